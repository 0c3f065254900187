"""Dead-letter records: exact payload bytes, provenance, reason, and a JSON round trip."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from jupiter_common import __version__
from jupiter_common.dead_letter import DeadLetter, SourceRecord, dead_letter
from jupiter_common.parsing import Rejection, RejectReason, parse_session

SOURCE = SourceRecord(topic="sessions-topic", partition=3, offset=1_234_567_890_123)
ISO_UTC_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def refuse(raw: bytes | None) -> DeadLetter:
    """The dead letter the jobs build for ``raw``: parse, and wrap the rejection."""
    rejection = parse_session(raw)
    assert isinstance(rejection, Rejection)
    return dead_letter("movements", raw, rejection, SOURCE)


PAYLOADS: list[bytes] = [
    b"\xff\xfe\x00\x01binary\x80",
    b'{"status": "\xe9t\xe9"}',  # Latin-1, not UTF-8
    b"not json",
    b'{"session_id": "x"}',
    '{"status": "départ", "note": "🚗 \\u2028 \u2028", "x": "\\"q\\""}'.encode(),
    b"[1, 2, 3]",
    b"\x00",
    b"   ",
]


@pytest.mark.parametrize("raw", PAYLOADS)
def test_round_trip_through_json(raw: bytes) -> None:
    letter = refuse(raw)
    text = letter.to_json()
    assert "\n" not in text  # one record per line is safe
    again = DeadLetter.from_json(text)
    assert again == letter
    assert DeadLetter.from_json(text.encode()) == letter
    assert again.payload == raw


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00\x01binary\x80", b'{"status": "\xe9t\xe9"}'])
def test_non_utf8_payload_is_kept_byte_for_byte(raw: bytes) -> None:
    letter = refuse(raw)
    assert letter.reason == RejectReason.NOT_UTF8.value
    assert letter.payload_text is None
    assert letter.payload == raw
    assert base64.b64decode(letter.payload_base64, validate=True) == raw


def test_text_payload_is_kept_as_text_and_bytes() -> None:
    raw = '{"status": "départ 🚗"}'.encode()
    letter = refuse(raw)
    assert letter.payload_text == raw.decode()
    assert letter.payload == raw
    # The text is written as text, not as \u escapes.
    assert "départ 🚗" in letter.to_json()


def test_empty_record_has_an_empty_payload() -> None:
    letter = refuse(None)
    assert letter.reason == RejectReason.EMPTY.value
    assert letter.payload == b""
    assert letter.payload_base64 == ""


def test_fields_carry_provenance_and_reason() -> None:
    raw = json.dumps({"session_id": "nope"}).encode()
    rejection = parse_session(raw)
    assert isinstance(rejection, Rejection)
    letter = dead_letter("events", raw, rejection, SOURCE)
    assert letter.job == "events"
    assert letter.job_version == __version__
    assert letter.reason == rejection.reason.value == "missing_field"
    assert letter.field == rejection.field
    assert letter.message == rejection.message
    assert (letter.topic, letter.partition, letter.offset) == (
        "sessions-topic",
        3,
        1_234_567_890_123,
    )


def test_json_has_stable_field_names() -> None:
    record = json.loads(refuse(b"{").to_json())
    assert set(record) == {
        "job",
        "job_version",
        "reason",
        "field",
        "message",
        "topic",
        "partition",
        "offset",
        "payload_base64",
        "payload_text",
        "payload_size",
        "payload_truncated",
        "failed_at",
    }
    assert record["reason"] == "not_json"
    assert record["field"] is None


def test_failed_at_is_iso_utc_with_z() -> None:
    before = datetime.now(UTC)
    letter = refuse(b"{")
    after = datetime.now(UTC)
    assert ISO_UTC_MS.fullmatch(letter.failed_at), letter.failed_at
    assert "+00:00" not in letter.failed_at
    failed_at = datetime.fromisoformat(letter.failed_at)
    assert failed_at.utcoffset() == timedelta(0)
    # Millisecond precision, truncated: within [before, after] at that precision.
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= failed_at <= after


def test_a_huge_refused_record_still_fits_in_a_kafka_record() -> None:
    """A dead letter that cannot be written would fail the job on every replay of the record."""
    raw = b'{"x": "' + b"\x01" * (3 * 1024 * 1024) + b'"'
    letter = refuse(raw)
    assert len(letter.to_json().encode()) < 1_000_000  # Kafka's default max record size
    assert letter.payload_truncated and letter.payload_size == len(raw)
    assert letter.payload == raw[: len(letter.payload)] and letter.payload_text is None


def test_a_small_record_is_kept_whole() -> None:
    letter = refuse(b"{")
    assert not letter.payload_truncated and letter.payload_size == 1 and letter.payload == b"{"
