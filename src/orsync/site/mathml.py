"""LaTeX in titles and abstracts as MathML for ``index.html`` (docs/site-files.md#math-on-the-page).

Authors write math as ``$...$``, ``\\(...\\)``, ``$$...$$`` or ``\\[...\\]`` and use text commands
such as ``\\textsc{GPT}``. The page shows the math as MathML, which current browsers render
without script or font, so the page keeps its CSP ``default-src 'none'``.

What reaches the page is HTML built here, never the converter's text: latex2mathml's output is
parsed as XML and rebuilt from an allowlist of MathML elements and attributes (it passes
``\\href`` and ``\\style`` through as attributes, and ``\\text{a<b}`` as unescaped markup).
Anything it cannot convert, or converts into something outside the allowlist, is shown as its
escaped source. Every piece of math keeps its source in ``alttext`` and a TeX annotation, so the
page's text can still be searched and copied. Only the page does this: the data files keep the
source text.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET

__all__ = ["to_html"]

# Presentation MathML (MathML Core) that latex2mathml emits for ordinary formulas.
_ELEMENTS = frozenset(
    {
        "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub", "msubsup",
        "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd",
        "mstyle", "mpadded", "mphantom", "menclose", "mmultiscripts", "mprescripts", "none",
    }
)  # fmt: skip
# Layout attributes only: no links (href), no style, no colour (text hidden in white on white).
_ATTRIBUTES = frozenset(
    {
        "display", "mathvariant", "stretchy", "fence", "separator", "accent", "accentunder",
        "linethickness", "lspace", "rspace", "width", "height", "depth", "columnalign",
        "rowalign", "columnspacing", "rowspacing", "columnlines", "rowlines", "frame",
        "movablelimits", "symmetric", "largeop", "minsize", "maxsize", "form", "notation",
        "scriptlevel", "displaystyle", "mathsize", "columnspan", "rowspan",
    }
)  # fmt: skip
# A value an allowed attribute may take: words, numbers and units; nothing that could hold a
# URL or a style rule.
_VALUE = re.compile(r"[\w .%+-]{0,40}")
# Sizes and spaces up to 3em (\Huge is 2.49em): a formula cannot push the page's text away or
# cover it (\hspace{1000cm}, \rule{100cm}{100cm}); a larger one loses the attribute.
_LENGTHS = frozenset(
    {"width", "height", "depth", "lspace", "rspace", "minsize", "maxsize", "mathsize",
     "linethickness"}
)  # fmt: skip
_LENGTH = re.compile(r"(?:[0-2](?:\.\d+)?|\.\d+)(?:em|ex)?|0|thin|medium|thick")
# The source is kept verbatim up to this length; longer "math" is more likely a stray dollar.
_MAX_MATH = 2000

# $$..$$ and \[..\] (display) before $..$ and \(..\) (inline). A single $ opens only before a
# non-space and closes only after one and not before a digit (Pandoc's rule), so prices such as
# "$5 and $10" stay text; \$ is a literal dollar.
_MATH = re.compile(
    r"\$\$(?P<d1>.+?)\$\$"
    r"|\\\[(?P<d2>.+?)\\\]"
    r"|\\\((?P<i1>.+?)\\\)"
    r"|(?<!\\)\$(?P<i2>[^\s$](?:[^$]*?[^\s$\\])?)\$(?!\d)",
    re.S,
)
# Text commands with a plain argument (no braces, no backslash, no math inside).
_TEXT_COMMAND = re.compile(r"\\(?P<cmd>[a-z]+)\{(?P<arg>[^{}\\$]*)\}")
_EMPHASIS = {"emph", "textit"}
_STRONG = {"textbf"}
_PLAIN = {"textsc", "texttt", "textrm", "textsf", "textup", "textnormal", "text", "mbox"}


def _escape(text: str) -> str:
    # The same five replacements as Jinja2's autoescape (markupsafe), so text reads the same
    # whether or not it had math.
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


def _text_html(text: str) -> str:
    """Text outside math: escaped, with simple text commands kept as their words."""
    out: list[str] = []
    pos = 0
    for m in _TEXT_COMMAND.finditer(text):
        cmd, arg = m["cmd"], m["arg"]
        if cmd in _EMPHASIS:
            html = f"<em>{_escape(arg)}</em>"
        elif cmd in _STRONG:
            html = f"<strong>{_escape(arg)}</strong>"
        elif cmd in _PLAIN:
            html = _escape(arg)
        else:
            continue  # an unknown command stays as its source
        out.append(_escape(text[pos : m.start()]))
        out.append(html)
        pos = m.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _Unsafe(ValueError):
    """The converter's output holds something outside the allowlist, or an unknown command."""


def _rebuild(element: ET.Element) -> str:
    tag = _local(element.tag)
    if tag not in _ELEMENTS:
        raise _Unsafe(tag)
    attrs = "".join(
        f' {name}="{_escape(value)}"'
        for name, value in sorted(element.attrib.items())
        if name in _ATTRIBUTES
        and _VALUE.fullmatch(value)
        and (name not in _LENGTHS or _LENGTH.fullmatch(value))
    )
    text = element.text or ""
    if tag in ("mi", "mo", "mtext") and text.startswith("\\"):
        raise _Unsafe(text)  # latex2mathml passes an unknown command through as its name
    inner = _escape(text) + "".join(_rebuild(child) for child in element)
    return f"<{tag}{attrs}>{inner}</{tag}>" + _escape(element.tail or "")


@functools.lru_cache(maxsize=4096)
def _math_html(source: str, display: bool) -> str | None:
    """``source`` as sanitised MathML, or None when it cannot be converted safely."""
    if len(source) > _MAX_MATH or not source.strip():
        return None
    # latex2mathml loads here, on the first formula: pages without math never import it.
    from latex2mathml.converter import convert

    try:
        # The converter's output begins with <math>, so no DOCTYPE (and with it no entity
        # definition) can come before the root: expat sees no entity to expand.
        root = ET.fromstring(convert(source, display="block" if display else "inline"))  # noqa: S314
        if _local(root.tag) != "math":
            return None
        body = "".join(_rebuild(child) for child in root)
    except Exception:  # the converter raises many kinds of error; all mean "cannot"
        return None
    if len(root) != 1:
        body = f"<mrow>{body}</mrow>"
    tex = _escape(source)
    return (
        f'<math display="{"block" if display else "inline"}" alttext="{tex}">'
        f"<semantics>{body}"
        f'<annotation encoding="application/x-tex">{tex}</annotation>'
        "</semantics></math>"
    )


def to_html(text: str | None) -> str:
    """``text`` as HTML that is safe to insert as is: escaped, with its math as MathML."""
    if not text:
        return ""
    out: list[str] = []
    pos = 0
    for m in _MATH.finditer(text):
        display = m["d1"] is not None or m["d2"] is not None
        source = next(g for g in (m["d1"], m["d2"], m["i1"], m["i2"]) if g is not None)
        math = _math_html(source, display)
        out.append(_text_html(text[pos : m.start()]))
        out.append(math if math is not None else _escape(m.group(0)))
        pos = m.end()
    out.append(_text_html(text[pos:]))
    return "".join(out)
