"""Dead letters as the operator commands see them: read from the dead-letter topic, selected by
job, reason and time, and shown one line each or in full.

A dead letter is named by where it is in the dead-letter topic, ``<partition>:<offset>``
(``list`` prints it first on each line; ``show`` and ``replay --id`` take it). Its fields are
:class:`jupiter_common.dead_letter.DeadLetter`'s.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from jupiter_common.dead_letter import DeadLetter
from jupiter_common.errors import JupiterError

_DURATION: Final = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_MESSAGE_CHARS: Final = 80
_BINARY_PREVIEW_BYTES: Final = 256


class DeadLetterSelectionError(JupiterError):
    """A filter the command was given cannot be understood (a bad ``--since``, ``--id``)."""


@dataclass(frozen=True, slots=True)
class Letter:
    """A dead letter and where it is in the dead-letter topic."""

    partition: int
    offset: int
    letter: DeadLetter

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a command acts on: every filter given must match. ``limit`` keeps
    the newest that many (in the order they were written)."""

    job: str | None = None
    reason: str | None = None
    since_ms: int | None = None
    limit: int | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (self.job is None or letter.job == self.job) and (
            self.reason is None or letter.reason == self.reason
        )

    def apply(self, letters: Iterable[Letter]) -> list[Letter]:
        kept: deque[Letter] = deque(maxlen=self.limit)
        kept.extend(item for item in letters if self.matches(item.letter))
        return list(kept)


def parse_since(text: str, now: datetime) -> int:
    """``--since``: a duration back from ``now`` (``90s``, ``15m``, ``2h``, ``7d``) or a time
    (ISO 8601; UTC when it names no offset). Returns Unix milliseconds."""
    match = _DURATION.match(text.strip())
    if match:
        moment = now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise DeadLetterSelectionError(
                f"--since {text!r}: give a duration (90s, 15m, 2h, 7d) or an ISO 8601 time"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_id(text: str) -> tuple[int, int]:
    """A dead letter's id, ``<partition>:<offset>`` in the dead-letter topic."""
    partition, sep, offset = text.partition(":")
    if not (sep and partition.isdigit() and offset.isdigit()):
        raise DeadLetterSelectionError(
            f"{text!r} is not a dead letter id: <partition>:<offset>, as `list` prints it"
        )
    return int(partition), int(offset)


def decode(records: Iterable[tuple[int, int, bytes | None]]) -> Iterator[Letter | str]:
    """Dead letters from (partition, offset, value) records; a record that is not a dead
    letter (written there by something else) comes back as a line saying so."""
    for partition, offset, value in records:
        try:
            yield Letter(partition, offset, DeadLetter.from_json(value or b""))
        except (ValueError, TypeError):
            yield f"{partition}:{offset} is not a dead letter ({len(value or b'')} bytes)"


def one_line(item: Letter) -> str:
    """``list``'s line: id, when, job, reason, field, where the record was, its size, and the
    start of the message; tab-separated so that ``cut``/``awk`` can take it apart."""
    letter = item.letter
    message = " ".join(letter.message.split())
    if len(message) > _MESSAGE_CHARS:
        message = message[: _MESSAGE_CHARS - 3] + "..."
    return "\t".join(
        (
            item.id,
            letter.failed_at,
            letter.job,
            letter.reason,
            letter.field or "-",
            f"{letter.topic}[{letter.partition}]@{letter.offset}",
            f"{letter.payload_size}B",
            message,
        )
    )


def payload_text(letter: DeadLetter) -> str | None:
    """The original record value as text when it is UTF-8, else None."""
    if letter.payload_text is not None:
        return letter.payload_text
    try:
        return letter.payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def details(item: Letter) -> str:
    """``show``'s text: every field, then the payload (pretty JSON when it is JSON, the text
    when it is UTF-8, else the base64 of its first bytes)."""
    letter = item.letter
    lines = [
        f"dead letter   {item.id}",
        f"failed at     {letter.failed_at}",
        f"job           {letter.job} {letter.job_version}",
        f"reason        {letter.reason}",
        f"field         {letter.field or '-'}",
        f"message       {letter.message}",
        f"record        {letter.topic} partition {letter.partition} offset {letter.offset}",
        f"size          {letter.payload_size} bytes"
        + (" (truncated: only the first bytes were kept)" if letter.payload_truncated else ""),
        "payload:",
    ]
    text = payload_text(letter)
    if text is None:
        head = letter.payload[:_BINARY_PREVIEW_BYTES]
        lines.append(f"(not UTF-8 text; base64 of the first {len(head)} bytes)")
        lines.append(letter.payload_base64[: (len(head) + 2) // 3 * 4])
    else:
        try:
            lines.append(json.dumps(json.loads(text), indent=2, ensure_ascii=False))
        except ValueError:
            lines.append(text)
    return "\n".join(lines)
