"""The dead-letter record: what a refused Kafka record becomes.

A dead-letter record keeps everything needed to understand and replay the original: the exact
bytes (base64, since they may not be text), the text when it is UTF-8, where it came from
(topic, partition, offset), which job refused it and why (a stable reason code, the field, a
message). It is one JSON object, written to the dead-letter topic.

A dead letter must always fit in a Kafka record, or writing it would fail the job on every
replay of the same bad input. So every part of it whose size depends on the input is bounded:

- the payload is kept up to :data:`MAX_PAYLOAD_BYTES` (then truncated, with
  ``payload_truncated`` set and ``payload_size`` the original size);
- its text only for payloads up to :data:`MAX_TEXT_BYTES`;
- ``message`` and ``field`` are cut to :data:`MAX_MESSAGE_CHARS` and :data:`MAX_FIELD_CHARS`
  characters (the parser already echoes only a short prefix of a refused value), and every
  other string to :data:`MAX_NAME_CHARS`.

Serialized (:meth:`DeadLetter.to_bytes`), a dead letter is therefore at most
:data:`MAX_DEAD_LETTER_BYTES`, whatever the record was: JSON escaping (``\\u0001`` is six bytes
for one) included. :func:`dead_letter` checks the size and, should it ever be exceeded, drops
the text copy and then shortens the payload, so the bound holds even for inputs nobody thought
of. The dead-letter producer and topic must accept :data:`DEAD_LETTER_RECORD_LIMIT` bytes
(see :mod:`jupiter_common.flink.dead_letter_sink`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Final

from jupiter_common import __version__
from jupiter_common.parsing import Rejection

MAX_PAYLOAD_BYTES: Final = 256 * 1024
"""Bytes of the original record value kept (base64: 4/3 of that)."""
MAX_TEXT_BYTES: Final = 16 * 1024
"""``payload_text`` is set only for UTF-8 values up to this size."""
MAX_MESSAGE_CHARS: Final = 2048
"""``message`` is cut to this many characters (with a note saying how many were cut)."""
MAX_FIELD_CHARS: Final = 64
MAX_NAME_CHARS: Final = 255
"""``job``, ``job_version`` and ``topic`` (Kafka topic names are at most 249 characters)."""

MAX_DEAD_LETTER_BYTES: Final = 512 * 1024
"""Hard upper bound on a serialized dead letter (UTF-8 JSON), whatever the refused record.

Worst case by construction: base64 payload 349,528 B + text 16 KiB x 6 (every byte a control
character, escaped as ``\\u00XX``) = 98,304 B + message 2,048 x 6 B + names and fixed fields
about 5 KB: about 465 KB. Half of Kafka's default 1 MiB ``max.request.size`` /
``message.max.bytes``, so the defaults always accept it."""
KAFKA_RECORD_OVERHEAD_BYTES: Final = 1024
"""Room for Kafka's framing of one record in a batch (batch header 61 B, record header and
varints about 20 B, no key, no headers), with a wide margin."""
DEAD_LETTER_RECORD_LIMIT: Final = MAX_DEAD_LETTER_BYTES + KAFKA_RECORD_OVERHEAD_BYTES
"""What the dead-letter producer's ``max.request.size`` is set to and what the dead-letter
topic's ``max.message.bytes`` must be at least."""

_CUT_NOTE: Final = " ... [{} more characters]"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where a record came from in Kafka."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    job: str
    job_version: str
    reason: str
    field: str | None
    message: str
    topic: str
    partition: int
    offset: int
    payload_base64: str
    payload_text: str | None
    payload_size: int
    payload_truncated: bool
    failed_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    def to_bytes(self) -> bytes:
        """The record value written to the dead-letter topic: :meth:`to_json` as UTF-8."""
        return self.to_json().encode("utf-8")

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        return cls(**json.loads(text))

    @property
    def payload(self) -> bytes:
        """The original record value, byte for byte (its first bytes if truncated)."""
        return base64.b64decode(self.payload_base64)


def dead_letter(
    job: str, raw: bytes | None, rejection: Rejection, source: SourceRecord
) -> DeadLetter:
    """Build the dead-letter record for ``raw``, refused by ``job`` for ``rejection``. Its
    serialized size is at most :data:`MAX_DEAD_LETTER_BYTES`, whatever the arguments."""
    original = raw or b""
    payload = original[:MAX_PAYLOAD_BYTES]
    text: str | None = None
    if len(original) <= MAX_TEXT_BYTES:
        try:
            text = original.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    letter = DeadLetter(
        job=clip(job, MAX_NAME_CHARS),
        job_version=clip(__version__, MAX_NAME_CHARS),
        reason=clip(rejection.reason.value, MAX_NAME_CHARS),
        field=None if rejection.field is None else clip(rejection.field, MAX_FIELD_CHARS),
        message=clip(rejection.message, MAX_MESSAGE_CHARS),
        topic=clip(source.topic, MAX_NAME_CHARS),
        partition=source.partition,
        offset=source.offset,
        payload_base64=base64.b64encode(payload).decode("ascii"),
        payload_text=text,
        payload_size=len(original),
        payload_truncated=len(original) > MAX_PAYLOAD_BYTES,
        failed_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
    return _within_bound(letter, payload)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (plus a note of how many were cut), and safe to
    encode as UTF-8 (a lone surrogate becomes the text ``\\udXXX``)."""
    if len(text) > limit:
        text = text[:limit] + _CUT_NOTE.format(len(text) - limit)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _within_bound(letter: DeadLetter, payload: bytes) -> DeadLetter:
    """Enforce :data:`MAX_DEAD_LETTER_BYTES`. By construction it already holds; should it not,
    the text copy goes first, then the payload is cut (and flagged as truncated)."""
    excess = len(letter.to_bytes()) - MAX_DEAD_LETTER_BYTES
    if excess <= 0:
        return letter
    if letter.payload_text is not None:
        letter = dataclasses.replace(letter, payload_text=None)
        excess = len(letter.to_bytes()) - MAX_DEAD_LETTER_BYTES
    if excess > 0:
        # base64 grows 3 bytes into 4: cut 3 bytes of payload per 4 bytes of excess, rounded up.
        keep = max(0, len(payload) - (excess + 3) // 4 * 3 - 3)
        letter = dataclasses.replace(
            letter,
            payload_base64=base64.b64encode(payload[:keep]).decode("ascii"),
            payload_truncated=True,
        )
    return letter
