"""The dead-letter record: what a refused Kafka record becomes.

A dead-letter record keeps everything needed to understand and replay the original: the exact
bytes (base64, since they may not be text), the text when it is UTF-8, where it came from
(topic, partition, offset), which job refused it and why (a stable reason code, the field, a
message). It is one JSON object, written to the dead-letter topic.

A dead letter must always fit in a Kafka record, or writing it would fail the job on every
replay of the same bad input: the payload is kept up to :data:`MAX_PAYLOAD_BYTES` (then
truncated, with ``payload_truncated`` set and ``payload_size`` the original size), and its text
only for payloads up to :data:`MAX_TEXT_BYTES`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Final

from jupiter_common import __version__
from jupiter_common.parsing import Rejection

MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_TEXT_BYTES: Final = 16 * 1024


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
    """Build the dead-letter record for ``raw``, refused by ``job`` for ``rejection``."""
    original = raw or b""
    payload = original[:MAX_PAYLOAD_BYTES]
    text: str | None = None
    if len(original) <= MAX_TEXT_BYTES:
        try:
            text = original.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    return DeadLetter(
        job=job,
        job_version=__version__,
        reason=rejection.reason.value,
        field=rejection.field,
        message=rejection.message,
        topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        payload_base64=base64.b64encode(payload).decode("ascii"),
        payload_text=text,
        payload_size=len(original),
        payload_truncated=len(original) > MAX_PAYLOAD_BYTES,
        failed_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
