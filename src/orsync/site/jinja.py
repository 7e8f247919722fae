"""The one Jinja2 environment of the site's HTML (the page and the board signs): autoescaped,
templates from the package, and the ``tex`` filter for titles and abstracts with math."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from orsync.site import mathml

if TYPE_CHECKING:
    from jinja2 import Environment


@functools.cache
def environment() -> Environment:
    # Jinja2 loads here, on the first page rendered: `orsync program` reads the day without it.
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(
        loader=PackageLoader("orsync.site", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # A paper's title and abstract with their math as MathML: `mathml.to_html` escapes the text
    # and rebuilds the converter's output from an allowlist, so its result may be marked safe.
    env.filters["tex"] = lambda text: Markup(mathml.to_html(text))  # noqa: S704
    return env
