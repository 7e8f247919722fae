"""`orsync export`: the store's papers, submissions and reviews as files a spreadsheet opens
safely."""

from __future__ import annotations

import csv
import io

from conftest import Setup


def test_export_csv_neutralises_formulas(setup: Setup) -> None:
    forum = next(iter(setup.emu.truth("chair")["submissions"]))
    setup.emu.edit_content(forum, title='=HYPERLINK("http://evil","x")')
    pulled = setup.cli("pull", "--json")
    assert pulled.returncode == 0, pulled.stderr
    result = setup.cli("export", "--what", "submissions", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = {r["forum_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows[forum]["title"] == '\'=HYPERLINK("http://evil","x")'
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows.values() for v in r.values())
