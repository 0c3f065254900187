"""Dead-letter records: exact payload bytes, provenance, reason, and a JSON round trip."""

from __future__ import annotations

import base64
import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support import SEED

import jupiter_common.dead_letter as dead_letter_module
from jupiter_common import __version__
from jupiter_common.dead_letter import (
    DEAD_LETTER_RECORD_LIMIT,
    MAX_DEAD_LETTER_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_PAYLOAD_BYTES,
    MAX_TEXT_BYTES,
    DeadLetter,
    SourceRecord,
    dead_letter,
)
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


def test_the_bound_is_well_under_kafkas_default_limits() -> None:
    """Kafka's defaults: producer max.request.size 1,048,576; broker message.max.bytes (and so a
    topic's max.message.bytes) 1,048,588. The dead letter needs half of that."""
    assert MAX_DEAD_LETTER_BYTES == 512 * 1024
    assert MAX_DEAD_LETTER_BYTES < DEAD_LETTER_RECORD_LIMIT <= 1_048_576 // 2 + 1024
    # The worst case by construction (see MAX_DEAD_LETTER_BYTES) leaves room to spare.
    worst = 4 * -(-MAX_PAYLOAD_BYTES // 3) + 6 * MAX_TEXT_BYTES + 6 * MAX_MESSAGE_CHARS + 8 * 1024
    assert worst < MAX_DEAD_LETTER_BYTES


def test_the_one_megabyte_timestamp_makes_a_small_dead_letter() -> None:
    """The poison pill that crash-looped the jobs: the message used to repeat the whole value
    (a 1.35 MB dead letter, refused by Kafka on every replay)."""
    raw = json.dumps({**SEED, "timestamp": "x" * 1_000_000}).encode()
    letter = refuse(raw)
    assert (letter.reason, letter.field) == ("bad_timestamp", "timestamp")
    assert "(1,000,000 characters)" in letter.message and len(letter.message) < 200
    assert len(letter.to_bytes()) < 360_000  # the 256 KiB payload in base64, and little else
    assert letter.payload_truncated and letter.payload_size == len(raw)
    assert letter.payload == raw[:MAX_PAYLOAD_BYTES]


# Characters that cost the most once in JSON: control characters (6 bytes each as \u00XX),
# quotes and backslashes (2), 4-byte UTF-8, line and paragraph separators.
_NASTY = '\x00\x01\x1f"\\\u2028\u2029\U0001f697\ufffd\x7fé'


def _hostile_string(rng: random.Random, size: int) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(_NASTY) * size
    if kind == 1:
        chunk = "".join(rng.choices(_NASTY, k=min(size, 4096)))
    elif kind == 2:
        chunk = "".join(chr(rng.randrange(1, 0xD800)) for _ in range(min(size, 4096)))
    else:
        return "x" * size
    return (chunk * (size // len(chunk) + 1))[:size]


def _hostile_payload(rng: random.Random) -> bytes:
    """One seeded hostile record value: up to about 4 MB."""
    size = int(2 ** rng.uniform(0, 22))  # log-uniform, 1 B .. 4 MiB
    kind = rng.randrange(9)
    body: dict[str, Any] = dict(SEED)
    if kind == 0:  # random bytes: mostly not UTF-8
        return rng.randbytes(size)
    if kind == 1:  # valid JSON with one required field a huge hostile string
        body[rng.choice(["timestamp", "status", "session_id", "order_id", "start_lat"])] = (
            _hostile_string(rng, size)
        )
    elif kind == 2:  # huge unknown field, and one required field missing
        body["extra"] = _hostile_string(rng, size)
        del body[rng.choice(["vehicle_id", "status", "end_lon"])]
    elif kind == 3:  # a huge key
        body[_hostile_string(rng, size)] = 1
        body["timestamp"] = "yesterday"
    elif kind == 4:  # deeply nested
        depth = max(1_000, size // 2)  # far past any parser recursion limit
        return (json.dumps(body)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}").encode()
    elif kind == 5:  # JSON escapes that decode to control characters in the value
        return json.dumps({**body, "status": "\x01" * size}, ensure_ascii=True).encode()
    elif kind == 6:  # valid UTF-8 JSON, then invalid bytes spliced in
        raw = bytearray(json.dumps({**body, "extra": "y" * size}).encode())
        at = rng.randrange(len(raw))
        raw[at:at] = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
        return bytes(raw)
    elif kind == 7:  # not JSON at all, printable
        return ("{" + _hostile_string(rng, size)).encode("utf-8")
    else:  # many problems at once, each with a huge value
        body = {k: _hostile_string(rng, size // 8 + 1) for k in body}
    return json.dumps(body, ensure_ascii=rng.random() < 0.5).encode()


def test_dead_letters_of_hostile_records_never_exceed_the_bound() -> None:
    """Seeded hostile payloads up to about 4 MB: every dead letter is within
    MAX_DEAD_LETTER_BYTES, valid UTF-8 JSON that reads back to itself, and keeps the reason,
    the original size, the first MAX_PAYLOAD_BYTES bytes and the truncation flag."""
    rng = random.Random(7)
    largest, reasons = 0, set()
    for _ in range(300):
        raw = _hostile_payload(rng)
        rejection = parse_session(raw)
        assert isinstance(rejection, Rejection), raw[:200]
        letter = dead_letter("movements", raw, rejection, SOURCE)
        data = letter.to_bytes()
        largest = max(largest, len(data))
        assert len(data) <= MAX_DEAD_LETTER_BYTES, (rejection.reason, len(raw))
        assert DeadLetter.from_json(data) == letter
        assert letter.reason == rejection.reason.value
        assert letter.field == rejection.field
        assert len(letter.message) <= MAX_MESSAGE_CHARS
        assert letter.payload_size == len(raw)
        assert letter.payload_truncated == (len(raw) > MAX_PAYLOAD_BYTES)
        assert letter.payload == raw[:MAX_PAYLOAD_BYTES]
        reasons.add(rejection.reason)
    assert largest > 340_000  # the generator does reach the payload cap
    assert {
        RejectReason.NOT_UTF8, RejectReason.NOT_JSON, RejectReason.MISSING_FIELD,
        RejectReason.BAD_TIMESTAMP, RejectReason.BAD_STATUS,
    } <= reasons  # fmt: skip


def test_every_string_of_the_dead_letter_is_bounded() -> None:
    """Not only what the parser says: whatever a rejection or a caller passes in."""
    huge = "\x01\ud800" * 500_000  # control characters and lone surrogates
    rejection = Rejection(RejectReason.BAD_STATUS, huge, field=huge)
    letter = dead_letter(huge, b"\x01" * MAX_TEXT_BYTES, rejection, SourceRecord(huge, 0, 1))
    data = letter.to_bytes()  # lone surrogates would fail to encode
    assert len(data) <= MAX_DEAD_LETTER_BYTES
    assert letter.payload_text == "\x01" * MAX_TEXT_BYTES  # the worst text for JSON, kept
    assert "more characters]" in letter.message
    assert DeadLetter.from_json(data) == letter


def test_past_the_bound_the_text_goes_first_then_the_payload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last line of defence, should the bound ever be reached: drop the text copy, then cut
    the payload and flag it. Exercised by lowering the bound."""
    raw = b"\x01" * MAX_TEXT_BYTES
    rejection = parse_session(raw)
    assert isinstance(rejection, Rejection)
    full = dead_letter("movements", raw, rejection, SOURCE)
    assert full.payload_text is not None and not full.payload_truncated

    monkeypatch.setattr(dead_letter_module, "MAX_DEAD_LETTER_BYTES", len(full.to_bytes()) - 1)
    no_text = dead_letter("movements", raw, rejection, SOURCE)
    assert no_text.payload_text is None and no_text.payload == raw
    assert not no_text.payload_truncated

    bound = len(no_text.to_bytes()) - 1000
    monkeypatch.setattr(dead_letter_module, "MAX_DEAD_LETTER_BYTES", bound)
    cut = dead_letter("movements", raw, rejection, SOURCE)
    assert len(cut.to_bytes()) <= bound
    assert cut.payload_truncated and cut.payload == raw[: len(cut.payload)]
    assert len(cut.payload) > len(raw) - 1000 and cut.payload_size == len(raw)


def test_a_small_record_is_kept_whole() -> None:
    letter = refuse(b"{")
    assert not letter.payload_truncated and letter.payload_size == 1 and letter.payload == b"{"
