"""Replaying dead letters: their original payloads, back onto a topic the jobs read.

What a replay publishes, per selected dead letter:

- the value: the original record value, byte for byte;
- the key: the session id, when the payload is a JSON object with a string ``session_id``
  (the same key a producer gives it, so a session's records stay in one partition); else none;
- headers naming where it came from: ``jupiter-replay-topic``, ``-partition``, ``-offset``
  (the original record), ``-reason``, ``-job`` and ``-dead-letter`` (``<partition>:<offset>``
  in the dead-letter topic).

One original record is published once per replay even when several jobs refused it (each
writes its own dead letter). A truncated payload (over 256 KiB) is never replayed: only its
first bytes were kept.

Replaying the same record again (or a record that did land) lands no second row for queries
that read with ``FINAL``: the replayed copy has the same business key (every table's
``ORDER BY``) and a ReplacingMergeTree keeps one row per key. See docs/dead-letters.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from confluent_kafka import KafkaError, Message, Producer

from jupiter_common.errors import JupiterError
from jupiter_common.settings import Settings
from jupiter_ops.kafka import client_config
from jupiter_ops.letters import Letter

HEADER_PREFIX: Final = "jupiter-replay-"
_FLUSH_TIMEOUT_S: Final = 60.0


class ReplayError(JupiterError):
    """Kafka refused or did not acknowledge some replayed records."""


@dataclass(frozen=True, slots=True)
class Replayed:
    """One record to publish."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    source: Letter


@dataclass(slots=True)
class Plan:
    """What a replay publishes and what it leaves out, and why."""

    records: list[Replayed] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def session_key(payload: bytes) -> bytes | None:
    """The session id of a JSON payload, as the record key; None when there is none."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    session = body.get("session_id") if isinstance(body, dict) else None
    return session.encode("utf-8") if isinstance(session, str) and session else None


def headers(item: Letter) -> tuple[tuple[str, bytes], ...]:
    letter = item.letter
    values = {
        "topic": letter.topic,
        "partition": str(letter.partition),
        "offset": str(letter.offset),
        "reason": letter.reason,
        "job": letter.job,
        "dead-letter": item.id,
    }
    return tuple((HEADER_PREFIX + name, value.encode("utf-8")) for name, value in values.items())


def plan(letters: Iterable[Letter]) -> Plan:
    """The records to publish for ``letters`` (in their order), one per original record."""
    result = Plan()
    seen: set[tuple[str, int, int]] = set()
    for item in letters:
        letter = item.letter
        origin = (letter.topic, letter.partition, letter.offset)
        if origin in seen:
            result.skip("same original record as another selected dead letter")
            continue
        seen.add(origin)
        if letter.payload_truncated:
            result.skip("payload truncated (only its first 256 KiB were kept)")
            continue
        payload = letter.payload
        result.records.append(Replayed(session_key(payload), payload, headers(item), item))
    return result


def publish(settings: Settings, topic: str, records: list[Replayed]) -> int:
    """Publish ``records`` to ``topic`` with an idempotent producer and wait for every
    acknowledgement; returns how many Kafka acknowledged. Raises :class:`ReplayError` naming
    the dead letters that were not."""
    producer = Producer({**client_config(settings), "enable.idempotence": True})
    failed: list[str] = []
    acknowledged = 0

    def callback(item: Replayed) -> Callable[[KafkaError | None, Message], None]:
        def done(error: KafkaError | None, _message: Message) -> None:
            nonlocal acknowledged
            if error is None:
                acknowledged += 1
            else:
                failed.append(f"{item.source.id}: {error.str()}")

        return done

    for item in records:
        producer.produce(
            topic,
            key=item.key,
            value=item.value,
            headers=list(item.headers),
            on_delivery=callback(item),
        )
        producer.poll(0)
    left = producer.flush(_FLUSH_TIMEOUT_S)
    if failed or left:
        raise ReplayError(
            f"{acknowledged} of {len(records)} replayed; not acknowledged: "
            + "; ".join(failed[:10])
            + (f" (+{left} still in flight)" if left else "")
        )
    return acknowledged
