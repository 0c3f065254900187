"""The chaos suite's profile and report, shared by its tests and ``hatch run chaos``.

``CHAOS_PROFILE`` (``short``, the default, as CI runs it, or ``full``) sets how hard each
scenario pushes: kills per job, the ClickHouse outage's length, fuzzed records.
``CHAOS_REPORT`` names a file to which each scenario appends one JSON line of figures (with
``hatch run chaos``; a plain ``pytest`` run writes none).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

PROFILE_VARIABLE: Final = "CHAOS_PROFILE"
REPORT_VARIABLE: Final = "CHAOS_REPORT"


@dataclass(frozen=True)
class Profile:
    name: str
    kills_per_job: int
    random_kills: bool
    """Kills at random moments (start-up, processing, mid-checkpoint), else each once the run
    has inserted rows (what finds duplicates fastest)."""
    stream_scale: int
    """How many times the kill scenario's stream is longer than the short profile's, so that
    the producer keeps running through every kill."""
    outage_seconds: float
    fuzz_records: int
    fuzz_huge: int
    """How many of the fuzzed records are huge (5 MiB)."""
    seed: int = 7


PROFILES: Final = {
    "short": Profile(
        "short",
        kills_per_job=2,
        random_kills=False,
        stream_scale=1,
        outage_seconds=20,
        fuzz_records=2_000,
        fuzz_huge=2,
    ),
    "full": Profile(
        "full",
        kills_per_job=20,
        random_kills=True,
        stream_scale=20,
        outage_seconds=60,
        fuzz_records=10_000,
        fuzz_huge=10,
    ),
}


def profile() -> Profile:
    name = os.environ.get(PROFILE_VARIABLE, "short")
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_VARIABLE}={name!r}: one of {', '.join(PROFILES)}")
    return PROFILES[name]


def report(scenario: str, job: str, **figures: Any) -> None:
    """Append one scenario's figures to ``CHAOS_REPORT``, if set."""
    path = os.environ.get(REPORT_VARIABLE)
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    line = {"scenario": scenario, "job": job, "test": test, "profile": profile().name, **figures}
    with Path(path).open("a") as out:
        out.write(json.dumps(line) + "\n")


def rows_figures(expected: Sequence[Any], landed: Sequence[Any]) -> dict[str, int]:
    """Expected against landed rows as a multiset: ``lost`` expected rows missing,
    ``duplicates`` extra copies of expected rows, ``unexpected`` rows nobody expected."""
    want, have = Counter(expected), Counter(landed)
    return {
        "rows_expected": len(expected),
        "rows_landed": len(landed),
        "lost": sum((want - have).values()),
        "duplicates": sum(have[row] - want[row] for row in want if have[row] > want[row]),
        "unexpected": sum(count for row, count in have.items() if row not in want),
    }
