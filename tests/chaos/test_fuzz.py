"""Fuzzed input: hostile records (``tests/hostile.py``: random bytes, truncated, broken and deeply
nested JSON, wrong types and values per field, huge fields up to 5 MiB, invalid UTF-8, empty
values and tombstones, JSON that is not an object, and odd but valid spellings) scattered
through a valid synthetic stream, read by the three jobs at once (bounded runs, each with its
own store, consumer group and dead-letter topic).

For each job: exit 0 with no task failure and no restart in Flink's log; every record that
``parse_session`` refuses dead-lettered exactly once (matched by partition and offset) with
``parse_session``'s reason and field and its payload, within the dead-letter bound, and nothing
else dead-lettered; the table exactly what the oracle says. The profile (``CHAOS_PROFILE``)
sets how many hostile records and how many of 5 MiB.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from hostile import hostile_records, mix
from oracle import (
    EVENTS_SQL,
    HEADER_SQL,
    MOVEMENTS_SQL,
    expected_events,
    expected_headers,
    expected_movements,
)
from support import (
    Produced,
    StreamingJob,
    consume_all,
    job_environment,
    produce,
    query,
    unique,
)

from jupiter_common.dead_letter import MAX_DEAD_LETTER_BYTES, MAX_PAYLOAD_BYTES, DeadLetter
from jupiter_common.parsing import Rejection, parse_session
from jupiter_local.chaos_profile import profile, report, rows_figures
from jupiter_local.synthetic import GeneratorConfig, generate

pytestmark = pytest.mark.chaos

RECORD_LIMIT: Final = 6 * 1024 * 1024
"""The fuzz topic's ``max.message.bytes`` and the producer's: room for a 5 MiB record."""
RUN_TIMEOUT_S: Final = 900

JOBS: Final[dict[str, tuple[str, Callable[[list[Produced]], list[tuple[Any, ...]]]]]] = {
    "movements": (MOVEMENTS_SQL, expected_movements),
    "events": (EVENTS_SQL, expected_events),
    "base": (HEADER_SQL, expected_headers),
}


def large_record_topic(bootstrap: str, partitions: int = 2) -> str:
    name = unique("fuzz")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"max.message.bytes": str(RECORD_LIMIT)}
    admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(30)
    return name


def failures(flink_log: str) -> tuple[int, int]:
    """(task failures, job restarts) in a Flink log."""
    return (
        flink_log.count("switched from RUNNING to FAILED"),
        flink_log.count("switched from state RUNNING to RESTARTING"),
    )


def dead_letter_figures(
    bootstrap: str, topic: str, refused: dict[tuple[int, int], tuple[Rejection, Produced]]
) -> dict[str, int]:
    """How the dead letters in ``topic`` match the records ``parse_session`` refused."""
    records = consume_all(bootstrap, topic, timeout=120)
    letters = [DeadLetter.from_json(r.value) for r in records]
    seen = Counter((d.partition, d.offset) for d in letters)
    wrong_reason = wrong_payload = 0
    for letter in letters:
        rejection, source = refused.get((letter.partition, letter.offset), (None, None))
        if rejection is None or source is None:
            continue
        wrong_reason += (letter.reason, letter.field) != (rejection.reason, rejection.field)
        wrong_payload += (
            letter.payload_size != len(source.value)
            or letter.payload != source.value[:MAX_PAYLOAD_BYTES]
            or not letter.reason
        )
    return {
        "dead_letters": len(letters),
        "dead_lettered": len(set(seen) & set(refused)),
        "not_dead_lettered": len(set(refused) - set(seen)),
        "dead_letter_duplicates": sum(n - 1 for n in seen.values()),
        "wrongly_dead_lettered": len(set(seen) - set(refused)),
        "wrong_reason": wrong_reason,
        "wrong_payload": wrong_payload,
        "oversized_dead_letters": sum(len(r.value) > MAX_DEAD_LETTER_BYTES for r in records),
    }


def test_fuzzed_records_are_dead_lettered_once_by_every_job_and_valid_rows_land_exactly(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    chaos = profile()
    hostile = hostile_records(chaos.fuzz_records, seed=chaos.seed, huge=chaos.fuzz_huge)
    stream = GeneratorConfig(
        sessions=max(10, chaos.fuzz_records // 10), pings_per_session=20, seed=chaos.seed + 1,
        duplicate_ratio=0.02, reorder_ratio=0.02,
    )  # fmt: skip
    valid = [(r.key, r.value) for r in generate(stream).records]
    records, where = mix(valid, hostile, seed=chaos.seed + 2)
    topic = large_record_topic(kafka_bootstrap)
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "enable.idempotence": True,
            "message.max.bytes": RECORD_LIMIT,
        }
    )
    produced = produce(kafka_bootstrap, topic, records, producer)
    refused: dict[tuple[int, int], tuple[Rejection, Produced]] = {}
    for record in produced:
        verdict = parse_session(record.value)
        if isinstance(verdict, Rejection):
            refused[(record.partition, record.offset)] = (verdict, record)
    fuzzed = [produced[i] for i in where]
    stream_figures = {
        "records": len(produced),
        "fuzzed": len(fuzzed),
        "fuzzed_refused": sum((r.partition, r.offset) in refused for r in fuzzed),
        "fuzzed_5mib": chaos.fuzz_huge,
        "fuzzed_bytes": sum(len(r.value) for r in fuzzed),
        "refused": len(refused),
    }

    started = time.monotonic()
    runs: dict[str, tuple[StreamingJob, Path, str]] = {}
    for job in JOBS:
        (tmp_path / job).mkdir()
        store, dead_letter_topic = tmp_path / job / "store", new_topic("dead-letter", 1)
        env = job_environment(
            kafka_bootstrap,
            topic,
            store,
            tmp_path / job / "checkpoints",
            DEAD_LETTER_TOPIC=dead_letter_topic,
            KAFKA_CONSUMER_GROUP=unique(job),
        )
        run = StreamingJob(f"jupiter_{job}", env, tmp_path / job / "job.log", ["--bounded"])
        runs[job] = (run, store, dead_letter_topic)

    problems: list[str] = []
    for job, (run, store, dead_letter_topic) in runs.items():
        deadline = started + RUN_TIMEOUT_S
        while run.process.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        if run.process.poll() is None:
            run.kill()
        code = run.process.returncode
        seconds = round(time.monotonic() - started, 1)
        task_failures, restarts = failures(run.flink_log())
        sql, expected = JOBS[job]
        landed = query(store, sql) if code == 0 else []
        figures = {
            **stream_figures,
            "exit_code": code,
            "task_failures": task_failures,
            "restarts": restarts,
            **dead_letter_figures(kafka_bootstrap, dead_letter_topic, refused),
            **rows_figures(expected(produced), landed),
            "seconds": seconds,
        }
        report("fuzz", job, **figures)
        wrong = {
            name: value
            for name, value in figures.items()
            if name not in stream_figures
            and name not in ("dead_letters", "dead_lettered", "rows_expected", "rows_landed")
            and name != "seconds"
            and value
        }
        if wrong or figures["dead_lettered"] != len(refused):
            problems.append(f"{job}-job: {wrong}\n{run.output()[-3000:]}")
    assert not problems, "\n".join(problems)
