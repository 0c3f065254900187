"""Raw Kafka bytes to a :class:`SessionMessage` or a :class:`Rejection`; never an exception.

A job must not fail on bad input, and a dead-letter record must say precisely why a message was
refused. :func:`parse_session` therefore returns a value in every case: the validated message,
or a rejection carrying a machine-readable :class:`RejectReason`, the offending field (when
there is one) and a human message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from jupiter_common.schema import (
    COORDINATE_FIELDS,
    INCOMPLETE_POSITION_ERROR,
    UUID_FIELDS,
    SessionMessage,
)


class RejectReason(StrEnum):
    """Why a record was refused. The values are stable: dashboards and replays key on them."""

    EMPTY = "empty"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    BAD_UUID = "bad_uuid"
    BAD_STATUS = "bad_status"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_COORDINATE = "bad_coordinate"
    INCOMPLETE_POSITION = "incomplete_position"
    INVALID = "invalid"
    """Refused by the schema for a reason none of the others names (a rule added to the schema
    later, say): its own reason, so it is never counted under another one."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused record: why (``reason``), where (``field``, if one field is to blame), and a
    message for humans that lists every problem found."""

    reason: RejectReason
    message: str
    field: str | None = None


ParseResult = SessionMessage | Rejection

MAX_PROBLEM_CHARS: Final = 300
"""Each problem in a rejection message is cut to this many characters. Pydantic's own messages
are short and never quote the input here (``include_input=False``); the schema's validators
quote only a prefix of a refused value (:data:`~jupiter_common.schema.ECHO_CHARS`). This is the
backstop that keeps a message small whatever a validator says."""

# When a message has several problems, the reason reported is the first in this order: the
# one a producer most needs to fix first.
_PRECEDENCE: Final = (
    RejectReason.NOT_JSON,
    RejectReason.NOT_AN_OBJECT,
    RejectReason.MISSING_FIELD,
    RejectReason.BAD_UUID,
    RejectReason.BAD_TIMESTAMP,
    RejectReason.BAD_STATUS,
    RejectReason.BAD_COORDINATE,
    RejectReason.INCOMPLETE_POSITION,
    RejectReason.INVALID,
)


def parse_session(raw: bytes | None) -> ParseResult:
    """Parse one Kafka record value. Returns the message or a :class:`Rejection`."""
    if not raw:
        return Rejection(RejectReason.EMPTY, "record has no value")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(
            RejectReason.NOT_UTF8, f"record is not UTF-8: byte {exc.start} is {raw[exc.start]:#04x}"
        )
    try:
        return SessionMessage.model_validate_json(text)
    except ValidationError as exc:
        return _rejection_from(exc)


def _rejection_from(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False)
    classified = [(_classify(error), error) for error in errors]
    reason, first = min(classified, key=lambda item: _PRECEDENCE.index(item[0]))
    field = _field_of(first)
    message = "; ".join(_describe(error) for _, error in classified)
    return Rejection(reason, message, field)


def _classify(error: ErrorDetails) -> RejectReason:
    kind = error["type"]
    field = _field_of(error)
    if kind == "json_invalid":
        return RejectReason.NOT_JSON
    if kind in ("model_type", "model_attributes_type"):
        return RejectReason.NOT_AN_OBJECT
    if kind == "missing":
        return RejectReason.MISSING_FIELD
    if kind == INCOMPLETE_POSITION_ERROR:
        return RejectReason.INCOMPLETE_POSITION
    if field in UUID_FIELDS:
        return RejectReason.BAD_UUID
    if field == "timestamp":
        return RejectReason.BAD_TIMESTAMP
    if field == "status":
        return RejectReason.BAD_STATUS
    if field in COORDINATE_FIELDS:
        return RejectReason.BAD_COORDINATE
    return RejectReason.INVALID


def _field_of(error: ErrorDetails) -> str | None:
    loc = error["loc"]
    return str(loc[0]) if loc else None


def _describe(error: ErrorDetails) -> str:
    field = _field_of(error)
    text = error["msg"].removeprefix("Value error, ")
    problem = f"{field}: {text}" if field else text
    if len(problem) > MAX_PROBLEM_CHARS:
        problem = problem[: MAX_PROBLEM_CHARS - 3] + "..."
    return problem
