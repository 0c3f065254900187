"""Live streams: records restamped with the wall-clock time at which a producer takes them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from jupiter_local.synthetic.model import SyntheticRecord, _SecondPrefixes

_TIMESTAMP_FIELD: Final = b'"timestamp":"'
_TIMESTAMP_LEN: Final = len("2025-07-19T12:34:56.789Z")
_LIVE_SECONDS: Final = _SecondPrefixes()


def restamp(record: SyntheticRecord, epoch_ms: int) -> SyntheticRecord:
    """``record`` with its ``timestamp`` set to ``epoch_ms`` (milliseconds since the epoch, UTC),
    in the generator's format; the rest of the value is unchanged. A record without a timestamp
    in that format (most malformed ones) is returned as it is."""
    value = record.value
    start = value.find(_TIMESTAMP_FIELD) + len(_TIMESTAMP_FIELD)
    end = start + _TIMESTAMP_LEN
    if start < len(_TIMESTAMP_FIELD) or value[end - 1 : end + 1] != b'Z"':
        return record
    if len(_LIVE_SECONDS) > 65536:
        _LIVE_SECONDS.clear()
    stamp = _LIVE_SECONDS.format(epoch_ms).encode("ascii")
    return SyntheticRecord(
        record.key,
        value[:start] + stamp + value[end:],
        record.kind,
        record.malformed_kind,
        record.session_id,
    )


def stamp_when_pulled(
    records: Iterable[SyntheticRecord], clock: Callable[[], float] = time.time
) -> Iterator[SyntheticRecord]:
    """``records``, each restamped with ``clock()`` (seconds) when it is pulled from this
    iterator, so that a producer pulling records just before sending them stamps them with the
    produce time. Within a session (a record key) timestamps stay strictly increasing: a record
    that would repeat its session's last millisecond gets the next one."""
    last: dict[bytes | None, int] = {}
    for record in records:
        epoch_ms = int(clock() * 1000)
        if record.key is not None:
            epoch_ms = max(epoch_ms, last.get(record.key, -1) + 1)
            last[record.key] = epoch_ms
        yield restamp(record, epoch_ms)
