"""``index.html`` from a day and records built in the test (``site.page``)."""

from __future__ import annotations

from html.parser import HTMLParser

from orsync.site import assemble, page, render
from site_helpers import P1, P2, record, schedule

NEWLINE_URL = "https://openreview.net/forum?id=forum2\nEVIL"


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [v for k, v in attrs if k == "href" and v is not None]


def hrefs(html: bytes) -> list[str]:
    parser = Links()
    parser.feed(html.decode())
    return parser.hrefs


def test_the_page_lists_every_paper_with_its_links_and_hosted_files() -> None:
    papers = [
        record(1, {"pdf": "files/1.pdf", "supplementary_material": None}),
        record(2, {"pdf": "files/../x.pdf"}, pdf_url="javascript:alert(1)"),
    ]
    day = assemble(schedule(("11:30", "11:45", "2")), papers)
    html = page.render(day, papers)
    links = hrefs(html)
    assert "https://openreview.net/forum?id=forum1" in links
    assert "https://openreview.net/pdf?id=forum1" in links
    assert "files/1.pdf" in links
    assert not any(h.startswith("javascript:") or ".." in h for h in links)
    assert b'id="paper-1"' in html and b'id="paper-2"' in html
    assert page.render(day, papers) == html  # byte-stable


def test_hostile_titles_are_text_not_markup() -> None:
    papers = [record(1, title="</h3><script>alert(1)</script>", authors=["<b>Eve</b>"])]
    html = page.render(assemble(schedule(), papers), papers)
    assert b"<script>alert" not in html and b"<b>Eve" not in html
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_forum_url_with_a_newline_is_never_a_link_on_the_page() -> None:
    papers = [record(1), record(2, forum_url=NEWLINE_URL)]
    files = render(
        papers, [P1, P2], ["html", "json"], day=assemble(schedule(("11:30", "11:45", "2")), papers)
    )
    assert not any(
        "EVIL" in h or ("id=forum2" in h and "forum?" in h) for h in hrefs(files["index.html"])
    )
    assert b'"url"' not in files["program.json"]  # the talk slot has no link either


class Elements(HTMLParser):
    """Every element of a page with its attributes, and the text inside <math> and outside it."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.math = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.math += tag == "math"

    def handle_endtag(self, tag: str) -> None:
        self.math -= tag == "math"

    def handle_data(self, data: str) -> None:
        if not self.math:
            self.text += data


def elements(html: bytes) -> Elements:
    parser = Elements()
    parser.feed(html.decode())
    return parser


MATH_TITLE = r"Sorting in $\mathcal{O}(n^2)$ with \textsc{GPT} and \emph{care}"
MATH_ABSTRACT = r"We bound \(\sum_i x_i\) and $$\frac{a}{b}$$ for $5 and $10; $x^{$ stays."


def test_math_in_titles_and_abstracts_is_mathml_with_its_source_kept() -> None:
    papers = [record(1, title=MATH_TITLE, abstract=MATH_ABSTRACT), record(2)]
    day = assemble(schedule(("11:30", "11:45", "1")), papers)
    html = page.render(day, papers)
    page_ = elements(html)
    maths = [a for t, a in page_.tags if t == "math"]
    # The title twice (papers and the contributed talk, and its poster board), the abstract twice.
    assert {a["alttext"] for a in maths} == {r"\mathcal{O}(n^2)", r"\sum_i x_i", r"\frac{a}{b}"}
    assert {a["display"] for a in maths} == {"inline", "block"}
    assert (
        html.count(b'<annotation encoding="application/x-tex">\\mathcal{O}(n^2)</annotation>') >= 2
    )
    assert "Sorting in" in page_.text and "with GPT and care" in page_.text
    assert "<em>care</em>" in html.decode() and "textsc" not in page_.text
    # Prices are not math; what the converter cannot read stays its source, as text.
    assert "for $5 and $10; $x^{$ stays." in page_.text
    assert page.render(day, papers) == html  # byte-stable
    # The data files keep the source text.
    files = render(papers, [P1, P2], ["json"], day=day)
    assert MATH_TITLE in files["papers.json"].decode().replace("\\\\", "\\")


def test_converter_output_never_bypasses_escaping() -> None:
    titles = [
        "$<script>alert(1)</script>$",
        r"$\href{javascript:alert(1)}{x}$",
        r"$\style{background:url(https://evil.example/x)}{y}$ $\color{white}{hidden}$",
        r"$\text{</mtext><script>alert(1)</script>}$",
        r"$\unknowncmd{x}$ \textsc{<img src=x onerror=alert(1)>}",
        r"$a\hspace{1000cm}b \rule{100cm}{100cm}$ $\big( x \big)$",
    ]
    papers = [record(i + 1, title=t) for i, t in enumerate(titles)]
    html = page.render(assemble(schedule(), papers), papers)
    tags = elements(html).tags
    assert not [t for t, _ in tags if t in ("script", "img")]
    inside = [(t, a) for t, a in tags if t != "a"]  # the page's own links are anchors
    assert not [
        (t, a)
        for t, a in inside
        if any(k in ("href", "style", "src", "mathcolor") or k.startswith("on") for k in a)
    ]
    # The source stays in alttext and the annotation, as text; no other attribute carries it.
    assert not [
        (t, a)
        for t, a in inside
        for k, v in a.items()
        if k != "alttext" and v is not None and "javascript" in v
    ]
    # A formula cannot cover the page: no size beyond 3em, no background.
    sizes = [v for t, a in inside for k, v in a.items() if k in ("width", "height", "maxsize")]
    assert sizes and set(sizes) == {"1.2em"}
    assert not [a for _, a in inside if "mathbackground" in a]
    text = html.decode()
    assert r"$\text{&lt;/mtext&gt;&lt;script&gt;alert(1)&lt;/script&gt;}$" in text  # fallback
    assert r"$\unknowncmd{x}$" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
