"""The operator commands' pieces that need no broker: selecting and showing dead letters, what a
replay publishes, and how the status view renders (milliseconds; tests/e2e/test_ops_commands_live.py
runs the commands against a real broker, job and store)."""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from jupiter_common.dead_letter import MAX_PAYLOAD_BYTES, SourceRecord, dead_letter
from jupiter_common.parsing import Rejection, RejectReason
from jupiter_common.settings import load_shared_settings
from jupiter_ops import dead_letters, snapshot
from jupiter_ops.kafka import PartitionLag
from jupiter_ops.letters import (
    DeadLetterSelectionError,
    Letter,
    Selection,
    decode,
    details,
    one_line,
    parse_id,
    parse_since,
)
from jupiter_ops.replay import HEADER_PREFIX, plan, session_key
from jupiter_ops.snapshot import JobStatus, Rows, SavedState, Snapshot, latest
from jupiter_ops.status import age, render

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
SESSION = "5f1b1f0e-8f3a-4c1e-9d3a-0b7f6e2d1a01"


def letter(
    raw: bytes,
    *,
    job: str = "movements",
    reason: RejectReason = RejectReason.MISSING_FIELD,
    offset: int = 7,
    at: tuple[int, int] = (0, 0),
) -> Letter:
    made = dead_letter(
        job,
        raw,
        Rejection(reason, "Field required", "vehicle_id"),
        SourceRecord("sessions", 1, offset),
    )
    return Letter(at[0], at[1], made)


def test_since_takes_durations_and_times() -> None:
    ms = int(NOW.timestamp() * 1000)
    assert parse_since("90s", NOW) == ms - 90_000
    assert parse_since("15m", NOW) == ms - 900_000
    assert parse_since("2h", NOW) == ms - 7_200_000
    assert parse_since("7d", NOW) == ms - 7 * 86_400_000
    assert parse_since("2026-01-02T11:00:00Z", NOW) == ms - 3_600_000
    assert parse_since("2026-01-02T11:00:00", NOW) == ms - 3_600_000  # UTC when no offset
    assert parse_since("2026-01-02T12:00:00+01:00", NOW) == ms - 3_600_000
    with pytest.raises(DeadLetterSelectionError, match="--since 'yesterday'"):
        parse_since("yesterday", NOW)


def test_ids_are_partition_and_offset() -> None:
    assert parse_id("0:42") == (0, 42)
    for bad in ("42", "a:1", "1:", "-1:3"):
        with pytest.raises(DeadLetterSelectionError, match="not a dead letter id"):
            parse_id(bad)


def test_selection_filters_then_keeps_the_newest_limit_in_order() -> None:
    letters = [
        letter(b"{}", job="movements", at=(0, 0)),
        letter(b"{}", job="events", at=(0, 1)),
        letter(b"x", job="movements", reason=RejectReason.NOT_JSON, at=(0, 2)),
        letter(b"{}", job="movements", at=(0, 3)),
        letter(b"{}", job="movements", at=(0, 4)),
    ]
    assert [i.id for i in Selection(job="movements").apply(letters)] == [
        "0:0",
        "0:2",
        "0:3",
        "0:4",
    ]
    picked = Selection(job="movements", reason="missing_field", limit=2).apply(letters)
    assert [i.id for i in picked] == ["0:3", "0:4"]
    assert Selection(reason="bad_uuid").apply(letters) == []


def test_a_record_that_is_not_a_dead_letter_is_reported_not_fatal() -> None:
    good = letter(b"{}").letter.to_bytes()
    out = list(decode([(0, 0, good), (0, 1, b"garbage"), (0, 2, None)]))
    assert isinstance(out[0], Letter)
    assert out[1:] == [
        "0:1 is not a dead letter (7 bytes)",
        "0:2 is not a dead letter (0 bytes)",
    ]


def test_one_line_has_id_job_reason_field_origin_size_and_a_short_message() -> None:
    item = letter(b'{"a": 1}', at=(2, 5))
    fields = one_line(item).split("\t")
    assert fields[0] == "2:5"
    assert fields[2:7] == ["movements", "missing_field", "vehicle_id", "sessions[1]@7", "8B"]
    assert fields[7] == "Field required"
    long = dead_letter(
        "events", b"", Rejection(RejectReason.NOT_JSON, "x\n" * 200), SourceRecord("t", 0, 0)
    )
    assert len(one_line(Letter(0, 0, long)).split("\t")[7]) == 80
    assert "\n" not in one_line(Letter(0, 0, long))


def test_show_pretty_prints_json_and_shows_text_and_binary() -> None:
    shown = details(letter(json.dumps({"session_id": SESSION}).encode()))
    assert f'"session_id": "{SESSION}"' in shown and "reason        missing_field" in shown
    assert details(letter(b"{not json")).endswith("payload:\n{not json")
    big_text = b"x" * (20 * 1024)  # over MAX_TEXT_BYTES: no payload_text, still decoded
    assert details(letter(big_text)).endswith("x" * 100)
    binary = details(letter(b"\xff\xfe\x00"))
    assert "not UTF-8 text; base64 of the first 3 bytes" in binary and binary.endswith("//4A")


def test_replay_keys_by_session_names_the_origin_and_publishes_each_record_once() -> None:
    body = json.dumps({"session_id": SESSION, "status": "en_route"}).encode()
    first = letter(body, job="movements", at=(0, 10))
    same_record_other_job = letter(body, job="events", at=(0, 11))
    unkeyed = letter(b"{not json", offset=8, at=(0, 12))
    truncated = letter(b"y" * (MAX_PAYLOAD_BYTES + 1), offset=9, at=(0, 13))
    result = plan([first, same_record_other_job, unkeyed, truncated])
    assert [(r.key, r.value) for r in result.records] == [
        (SESSION.encode(), body),
        (None, b"{not json"),
    ]
    assert dict(result.records[0].headers) == {
        f"{HEADER_PREFIX}topic": b"sessions",
        f"{HEADER_PREFIX}partition": b"1",
        f"{HEADER_PREFIX}offset": b"7",
        f"{HEADER_PREFIX}reason": b"missing_field",
        f"{HEADER_PREFIX}job": b"movements",
        f"{HEADER_PREFIX}dead-letter": b"0:10",
    }
    assert sorted(result.skipped.values()) == [1, 1]


def test_session_key_only_from_a_json_object_with_a_string_session_id() -> None:
    assert session_key(b'{"session_id": "s-1"}') == b"s-1"
    for payload in (b"[1]", b'{"session_id": 5}', b'{"session_id": ""}', b"\xff", b""):
        assert session_key(payload) is None


def test_ages_are_short() -> None:
    assert [age(NOW - timedelta(seconds=s), NOW) for s in (5, 425, 11_520, 187_200, -3)] == [
        "5s",
        "7m 05s",
        "3h 12m",
        "2d 4h",
        "0s",
    ]


def test_latest_checkpoint_and_savepoint_come_from_the_jobs_folder(tmp_path: Path) -> None:
    settings = load_shared_settings({"FLINK_CHECKPOINT_DIR": tmp_path.as_uri()}).for_job("events")
    assert latest(settings, "checkpoint") is None
    root = tmp_path / "events" / "jupiter-events"
    for folder in ("abc/chk-3", "abc/chk-4", "savepoints/savepoint-1", "abc/chk-5"):
        (root / folder).mkdir(parents=True)
    for n, folder in enumerate(("abc/chk-3", "abc/chk-4", "savepoints/savepoint-1")):
        meta = root / folder / "_metadata"
        meta.write_bytes(b"x")
        stamp = NOW.timestamp() + n
        os.utime(meta, (stamp, stamp))
    found = latest(settings, "checkpoint")
    assert found is not None and found.path.endswith("abc/chk-4")  # chk-5 is not complete
    saved = latest(settings, "savepoint")
    assert saved is not None and saved.completed == NOW + timedelta(seconds=2)
    remote = load_shared_settings({"FLINK_CHECKPOINT_DIR": "s3://b/c"}).for_job("events")
    with pytest.raises(ValueError, match="not a local folder"):
        latest(remote, "checkpoint")


def test_the_view_shows_lag_rows_states_dead_letters_and_what_failed() -> None:
    snapshot = Snapshot(
        taken=NOW,
        topic="sessions",
        dead_letter_topic="dlq",
        jobs=[
            JobStatus(
                job="movements",
                group="jupiter-movements",
                table="session_movements",
                lag=[PartitionLag(0, 10, 15, 0), PartitionLag(1, None, 4, 1)],
                rows=Rows(12, 3456),
                checkpoint=SavedState("/c/movements/x/chk-9", NOW - timedelta(seconds=4)),
                savepoint=None,
            ),
            JobStatus(
                job="events",
                group="jupiter-events",
                table="session_events",
                lag="Kafka does not answer: timed out",
                rows="the embedded store is open in another process",
                checkpoint="s3:// is not a local folder",
                savepoint=None,
            ),
            JobStatus(
                job="base",
                group="jupiter-base",
                table="sessions_base",
                lag=[],
                rows=None,
                checkpoint=None,
                savepoint=None,
            ),
        ],
        dead_letters=Counter({("movements", "not_json"): 3, ("events", "bad_uuid"): 1}),
    )
    out = io.StringIO()
    Console(file=out, width=200).print(render(snapshot))
    text = out.getvalue()
    assert "8  p0: 5, p1: 3 (no commit)" in text
    assert "3,456" in text and "4s ago  /c/movements/x/chk-9" in text
    assert "Kafka does not answer: timed out" in text
    assert "the embedded store is open in another process" in text
    assert "not_json" in text and "bad_uuid" in text
    assert "no table" in text


def test_lag_counts_from_the_commit_or_from_the_partition_start() -> None:
    assert PartitionLag(0, committed=40, end=50, start=0).lag == 10
    assert PartitionLag(0, committed=None, end=50, start=20).lag == 30
    assert PartitionLag(0, committed=50, end=50, start=0).lag == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay"], "say what to replay"),
        (["replay", "--id", "0:1", "--job", "events"], "--id selects on its own"),
        (["replay", "--id", "one"], "not a dead letter id"),
        (["list", "--limit", "0"], "--limit must be at least 1"),
        (["list", "--since", "soon"], "--since 'soon'"),
        (["show", "7"], "not a dead letter id"),
    ],
)
def test_dead_letters_refuses_unclear_selections_before_reading_kafka(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # KAFKA_BOOTSTRAP is not reachable here: each refusal comes before Kafka is asked.
    assert dead_letters.main(args) == 2
    assert message in capsys.readouterr().err


class _Record:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def value(self) -> bytes:
        return self._value


def test_dead_letters_of_the_hour_are_counted_by_job_and_reason_up_to_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = [letter(b"{}", job="events").letter.to_bytes()] * 3 + [b"junk"]
    records += [letter(b"x", reason=RejectReason.NOT_JSON).letter.to_bytes()]
    monkeypatch.setattr(snapshot, "read_topic", lambda *_: iter(map(_Record, records)))
    counts = snapshot.dead_letters_by_reason(load_shared_settings({}), 0)
    assert counts == {
        ("events", "missing_field"): 3,
        ("?", "not a dead letter"): 1,
        ("movements", "not_json"): 1,
    }
    monkeypatch.setattr(snapshot, "MAX_DEAD_LETTERS_COUNTED", 2)
    counts = snapshot.dead_letters_by_reason(load_shared_settings({}), 0)
    assert counts == {("events", "missing_field"): 2, ("(more)", "counting stopped after 2"): 1}
