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

from jupiter_common.settings import Settings, secret_file_variable_names

ROOT: Final = Path(__file__).resolve().parents[2]
CONFIGURATION: Final = ROOT / "docs" / "configuration.md"
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
