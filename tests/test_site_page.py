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
