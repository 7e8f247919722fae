"""The documentation keeps up with the code: the command reference is the code's own, every
configuration key is documented, the README's links lead somewhere, and its two fresh-clone
commands are the ones CI runs."""

from __future__ import annotations

import importlib.util
import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from orsync import errors
from orsync.config import Config

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"

DEMO_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/orsync demo"
)
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/pytest -q"
)


def _generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_generated_from_the_code() -> None:
    """A new command or option fails here until `python docs/gen_cli.py` documents it."""
    committed = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert committed == _generator().render(), "docs/cli.md is stale: run python docs/gen_cli.py"


def test_cli_reference_covers_every_command() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in ("pull", "run", "push", "status", "changes", "report", "export", "check"):
        assert f"## orsync {command}\n" in text
    for command in ("posters assign", "posters show", "posters pin", "posters unpin"):
        assert f"## orsync {command}\n" in text
    assert "## orsync talks suggest\n" in text
    assert "| `--wait-s <float>` |" in text  # an option, with its metavar


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _is_list(annotation: object) -> bool:
    if typing.get_origin(annotation) is tuple:
        return True
    return any(_is_list(arg) for arg in typing.get_args(annotation))


def config_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    """Every key a config file may set, dotted; ``x[].key`` is ``key`` in each ``[[x]]``."""
    keys = []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue  # set by orsync, not by the file
        path = f"{prefix}{name}"
        nested = _models_in(info.annotation)
        if not nested:
            keys.append(path)
            continue
        inner = f"{path}[]." if _is_list(info.annotation) else f"{path}."
        for sub in nested:
            keys += config_keys(sub, inner)
    return keys


def test_config_keys_are_what_the_models_declare() -> None:
    keys = config_keys()
    assert "openreview.venue_id" in keys
    assert "website.on_change_timeout_s" in keys
    assert "posters.sessions[].start" in keys
    assert "talks[].paper" in keys
    assert "program.slots[].kind" in keys
    assert "source" not in keys


def test_every_config_key_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in config_keys() if f"`{key}`" not in text]
    assert not missing, f"docs/configuration.md does not document {missing}"


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub makes of a page's headings."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")
            anchors.add(slug)
    return anchors


def _links(markdown: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", markdown)


def test_readme_links_lead_to_pages_and_headings_that_exist() -> None:
    readme = README.read_text(encoding="utf-8")
    into_docs = [link for link in _links(readme) if link.startswith("docs/")]
    assert len(into_docs) >= 7, into_docs
    for link in _links(readme):
        if "://" in link:
            continue
        target, _, anchor = link.partition("#")
        path = ROOT / target
        assert path.is_file(), f"README links {link}, which does not exist"
        if anchor:
            assert anchor in _anchors(path.read_text(encoding="utf-8")), link


def test_docs_links_between_pages_exist() -> None:
    for page in sorted(DOCS.glob("*.md")):
        for link in _links(page.read_text(encoding="utf-8")):
            if "://" in link or link.startswith("#"):
                continue
            target, _, anchor = link.partition("#")
            path = (page.parent / target).resolve()
            assert path.is_file(), f"{page.name} links {link}, which does not exist"
            if anchor:
                assert anchor in _anchors(path.read_text(encoding="utf-8")), (page.name, link)


def test_readme_is_short_and_keeps_the_fresh_clone_commands() -> None:
    readme = README.read_text(encoding="utf-8")
    assert len(readme.encode("utf-8")) <= 10 * 1024
    lines = readme.splitlines()
    assert DEMO_COMMAND in lines
    assert TEST_COMMAND in lines
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == TEST_COMMAND, "CI runs exactly the README's test command"


def test_readme_says_why_each_dependency_is_there() -> None:
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## Dependencies", 1)[1].split("\n## ", 1)[0].lower()
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = pyproject.split("\ndependencies = [", 1)[1].split("]", 1)[0]
    names = re.findall(r'"([A-Za-z0-9_.-]+)', block)
    assert "sqlmodel" in names and "openreview-py" in names
    for name in [*names, "psycopg", "import-linter"]:
        assert name.lower() in section, f"the README does not say why {name} is there"


def test_every_exit_code_is_explained() -> None:
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    for name, code in vars(errors).items():
        if name.startswith("EXIT_"):
            assert f"| `{code}` |" in reference, f"docs/cli.md does not explain {name}"
            assert f"| `{code}` |" in readme, f"the README does not explain {name}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"the README does not link docs/{page.name}"
