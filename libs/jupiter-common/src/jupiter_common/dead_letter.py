"""The dead-letter record: what a refused Kafka record becomes.

A dead-letter record keeps everything needed to understand and replay the original: the exact
bytes (base64, since they may not be text), the text when it is UTF-8, where it came from
(topic, partition, offset), which job refused it and why (a stable reason code, the field, a
message). It is one JSON object, written to the dead-letter topic.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from jupiter_common import __version__
from jupiter_common.parsing import Rejection


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
    failed_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        return cls(**json.loads(text))

    @property
    def payload(self) -> bytes:
        """The original record value, byte for byte."""
        return base64.b64decode(self.payload_base64)


def dead_letter(
    job: str, raw: bytes | None, rejection: Rejection, source: SourceRecord
) -> DeadLetter:
    """Build the dead-letter record for ``raw``, refused by ``job`` for ``rejection``."""
    payload = raw or b""
    try:
        text: str | None = payload.decode("utf-8")
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
        failed_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
