"""Parse each Kafka record once and route it: table rows downstream, refusals to dead letter.

The job supplies a :data:`RowMapper` (message and source coordinates in, zero or more row
tuples out); everything else — decoding, validation, dead-letter records, counting — is here,
so the three jobs refuse bad input in exactly the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from pyflink.common import Types
from pyflink.datastream import OutputTag, ProcessFunction, RuntimeContext

from jupiter_common.dead_letter import SourceRecord, dead_letter
from jupiter_common.parsing import Rejection, RejectReason, parse_session
from jupiter_common.schema import SessionMessage

RowMapper = Callable[[SessionMessage, SourceRecord], Iterable[Any]]
"""A job's mapping from one valid message to the records it sends downstream."""

DEAD_LETTER_TAG: Final = OutputTag("dead-letter", Types.STRING())


class SessionRouter(ProcessFunction):  # type: ignore[misc]
    """``Row(value, partition, offset)`` in; the mapper's records out; dead letters on
    :data:`DEAD_LETTER_TAG` as JSON strings. Never raises on bad input."""

    def __init__(self, job: str, topic: str, to_rows: RowMapper) -> None:
        self._job = job
        self._topic = topic
        self._to_rows = to_rows
        self._counters: dict[str, Any] = {}

    def open(self, runtime_context: RuntimeContext) -> None:
        group = runtime_context.get_metrics_group().add_group("jupiter")
        self._records = group.counter("records_in")
        self._accepted = group.counter("records_accepted")
        self._rejected = group.counter("records_rejected")
        self._counters = {r.value: group.counter(f"rejected_{r.value}") for r in RejectReason}

    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterator[Any]:
        raw = bytes(value[0]) if value[0] is not None else None
        source = SourceRecord(self._topic, int(value[1]), int(value[2]))
        self._records.inc()
        parsed = parse_session(raw)
        if isinstance(parsed, Rejection):
            self._rejected.inc()
            self._counters[parsed.reason.value].inc()
            yield DEAD_LETTER_TAG, dead_letter(self._job, raw, parsed, source).to_json()
            return
        self._accepted.inc()
        yield from self._to_rows(parsed, source)
