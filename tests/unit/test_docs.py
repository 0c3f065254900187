"""The documentation against the code: docs/configuration.md lists exactly the variables
``Settings`` reads, with their real defaults.

A settings variable missing from the page is a setting nobody can find; a page variable the code
does not know is a setting that silently does nothing. Both fail here, so whoever adds, renames or
removes a setting updates the page in the same change.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from pydantic import SecretStr

from jupiter_common.parsing import RejectReason
from jupiter_common.settings import Settings, secret_file_variable_names

ROOT: Final = Path(__file__).resolve().parents[2]
CONFIGURATION: Final = ROOT / "docs" / "configuration.md"
INPUT: Final = ROOT / "docs" / "input.md"
_VARIABLE: Final = re.compile(r"`([A-Z][A-Z0-9_]*)`")
_FIRST_CODE: Final = re.compile(r"^`([^`]*)`")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _settings_rows(page: str) -> dict[str, str]:
    """Variable -> its Default cell, from every table headed ``| Variable | Default | ...``
    (the page's other tables, such as the local defaults, have other headers)."""
    rows: dict[str, str] = {}
    in_table = False
    for line in page.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if cells[:2] == ["Variable", "Default"]:
            in_table = True
            continue
        if not in_table or set(line) <= set("|-: "):
            continue
        for name in _VARIABLE.findall(cells[0]):
            assert name not in rows, f"{name} has two rows in {CONFIGURATION.name}"
            rows[name] = cells[1]
    return rows


def _documented_default(cell: str) -> str:
    """``empty...`` is the empty string; otherwise the cell's first code span."""
    if cell.startswith("empty"):
        return ""
    match = _FIRST_CODE.match(cell)
    assert match, f"a Default cell starts with `value` or 'empty', not {cell!r}"
    return match.group(1)


def _real_defaults() -> dict[str, str]:
    """Each variable's default as its documentation spells it (booleans in lower case)."""
    defaults: dict[str, str] = {}
    for field in Settings.model_fields.values():
        if field.alias is None:
            continue
        value = field.default
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, bool):
            text = str(value).lower()
        else:
            text = str(value)
        defaults[field.alias] = text
    defaults.update(dict.fromkeys(secret_file_variable_names(), ""))
    return defaults


def test_the_configuration_page_lists_exactly_the_settings_variables() -> None:
    documented = set(_settings_rows(CONFIGURATION.read_text(encoding="utf-8")))
    known = Settings.variable_names() | secret_file_variable_names()

    assert sorted(known - documented) == [], "settings variables missing from the page"
    assert sorted(documented - known) == [], "page variables that Settings does not read"


def test_the_configuration_page_gives_each_variable_its_real_default() -> None:
    rows = _settings_rows(CONFIGURATION.read_text(encoding="utf-8"))
    real = _real_defaults()

    wrong = {
        name: (_documented_default(cell), real[name])
        for name, cell in rows.items()
        if name in real and _documented_default(cell) != real[name]
    }
    assert wrong == {}, "documented default != Settings default"


def test_the_page_check_sees_a_missing_and_an_unknown_variable() -> None:
    """The parser must find rows at all, or the two tests above would pass on any page."""
    page = (
        "| Variable | Default | Meaning |\n|---|---|---|\n"
        "| `KAFKA_TOPIC` | `sessions-topic` | input |\n"
        "| `NOT_A_SETTING` | empty | nothing |\n\n"
        "| Variable | Value under `hatch run` |\n|---|---|\n| `KAFKA_BOOTSTRAP` | x |\n"
    )
    rows = _settings_rows(page)

    assert rows == {"KAFKA_TOPIC": "`sessions-topic`", "NOT_A_SETTING": "empty"}
    assert "NOT_A_SETTING" not in Settings.variable_names()
    assert "KAFKA_BOOTSTRAP" in Settings.variable_names() - set(rows)


README: Final = ROOT / "README.md"
CI_SCRIPT: Final = ROOT / ".ci" / "run"
README_MAX_LINES: Final = 220
_FENCE: Final = re.compile(r"^\s*(```|~~~)")
_LINK: Final = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_CODE_SPAN: Final = re.compile(r"`[^`]*`")


def _markdown_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, code spans blanked (a link there is not a link)."""
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(_CODE_SPAN.sub("``", line))
    return lines


def _anchors(path: Path) -> set[str]:
    """The heading anchors GitHub renders for ``path``: lower case, punctuation dropped, spaces
    to hyphens, ``-1``, ``-2`` ... for repeated headings."""
    anchors: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        unique, n = slug, 0
        while unique in anchors:
            n += 1
            unique = f"{slug}-{n}"
        anchors.add(unique)
    return anchors


def _broken_links(path: Path) -> list[str]:
    broken: list[str] = []
    for line in _prose(path.read_text(encoding="utf-8")):
        for target in _LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{target}: no heading with that anchor")
    return broken


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    broken = {
        str(path.relative_to(ROOT)): links
        for path in _markdown_files()
        if (links := _broken_links(path))
    }

    assert broken == {}


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Some `code`: here\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[a](other.md#some-code-here) [b](other.md#nowhere) [c](gone.md)"
        " [d](#page) [e](#nope) [f](https://example.com/x)\n```\n[g](in-code.md)\n```\n",
        encoding="utf-8",
    )

    assert _broken_links(page) == [
        "other.md#nowhere: no heading with that anchor",
        "gone.md: no such file",
        "#nope: no heading with that anchor",
    ]


def test_the_readme_is_short_and_opens_with_the_two_commands_ci_runs() -> None:
    """CI (.ci/run) runs the set-up, then README command 1 (the demo) and command 2 (the tests):
    the README's first code block must be exactly those two, and stay a five-minute read."""
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    first_block = text.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    before_block = text.split("```", 1)[0]
    ci = CI_SCRIPT.read_text(encoding="utf-8")

    assert len(lines) <= README_MAX_LINES
    assert "\n## " not in before_block, "the two commands come before the first section"
    assert commands == [
        "bash infra/local/setup.sh && python3 -m hatch run demo",
        "bash infra/local/setup.sh && python3 -m hatch run test",
    ]
    for step in (
        "bash infra/local/setup.sh",
        "python3 -m hatch run demo",
        "python3 -m hatch run test",
    ):
        assert re.search(rf"^{re.escape(step)}\s*(#.*)?$", ci, re.MULTILINE), step


def test_the_input_page_explains_every_rejection_reason() -> None:
    """Dashboards and replays key on the reasons: each one has a row in the reasons table."""
    rows = {
        cells[0].strip("`")
        for line in INPUT.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `") and (cells := _cells(line))
    }

    assert sorted(reason.value for reason in RejectReason if reason.value not in rows) == []


def test_the_readme_links_every_docs_page() -> None:
    """A page nobody links is a page nobody finds: the README's link list names each one."""
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for line in _prose(README.read_text(encoding="utf-8"))
        for target in _LINK.findall(line)
    }
    pages = {page.resolve() for page in (ROOT / "docs").glob("*.md")}

    assert sorted(page.name for page in pages - linked) == []


_REPO_PATH: Final = re.compile(r"`((?:libs|jobs|infra|tests|docs|\.ci)/[^`\s]*)`")
_NOT_IN_THE_REPOSITORY: Final = frozenset(
    {
        "infra/compose/.env",  # the user's copy of .env.example (git-ignored)
        "infra/compose/clickhouse-tls",  # the user's TLS files (git-ignored)
        "infra/compose/trips-job.yaml",  # adding-a-job.md's example job
        "infra/k8s/jobs/trips/kustomization.yaml",
    }
)


def test_every_repository_path_the_docs_name_exists() -> None:
    """A file named in prose (`tests/e2e/test_x.py`, `infra/compose/job-cluster.yaml`) is a
    link too: a rename must update the page. Paths with placeholders (`<job>`, `*`) are skipped."""
    missing = [
        f"{page.relative_to(ROOT)}: {path}"
        for page in _markdown_files()
        for path in _REPO_PATH.findall(page.read_text(encoding="utf-8"))
        if not any(c in path for c in "<*{")
        and path.rstrip("/") not in _NOT_IN_THE_REPOSITORY
        and not (ROOT / path).exists()
    ]

    assert missing == []
