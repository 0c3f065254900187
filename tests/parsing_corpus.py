"""Inputs for the tests of the session parsers, shared so that every parser faces the same ones:
``parse_session`` (tests/unit/test_parsing.py) and ``parse_batch``, which must agree with it
record for record (tests/unit/test_batch_parsing.py)."""

from __future__ import annotations

import json
import random
from typing import Any

from support import SEED

from jupiter_common.parsing import RejectReason
from jupiter_common.schema import COORDINATE_FIELDS, UUID_FIELDS, SessionMessage

REQUIRED_FIELDS = tuple(
    name for name, field in SessionMessage.model_fields.items() if field.is_required()
)


def encode(**changes: Any) -> bytes:
    """The seed message as JSON bytes with ``changes``; a value of ``...`` removes the field."""
    data = dict(SEED)
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return json.dumps(data).encode()


Case = tuple[bytes | None, str | None]


def case(raw: bytes | None, field: str | None) -> Case:
    return (raw, field)


# One or more inputs per reason, with the field the rejection must name (None: no single field).
CASES: dict[RejectReason, list[Case]] = {
    RejectReason.EMPTY: [(None, None), (b"", None)],
    RejectReason.NOT_UTF8: [
        (b"\xff\xfe\x00", None),
        (b'{"status": "\xe9t\xe9"}', None),
        (encode()[:-2] + b"\xc3", None),
    ],
    RejectReason.NOT_JSON: [
        (b"{", None),
        (b"not json", None),
        (b"   ", None),
        (b"{'session_id': 1}", None),
        (encode()[:-1], None),
        (encode() + b"}", None),
    ],
    RejectReason.NOT_AN_OBJECT: [
        (b"[]", None),
        (json.dumps([SEED]).encode(), None),
        (b"42", None),
        (b"-1.5", None),
        (b"null", None),
        (b"true", None),
        (b'"a string"', None),
    ],
    RejectReason.MISSING_FIELD: [case(encode(**{name: ...}), name) for name in REQUIRED_FIELDS],
    RejectReason.BAD_UUID: [case(encode(**{name: "nope"}), name) for name in UUID_FIELDS]
    + [(encode(session_id=None), "session_id"), (encode(order_id=7), "order_id")],
    RejectReason.BAD_STATUS: [
        (encode(status=""), "status"),
        (encode(status="en route"), "status"),
        (encode(status=3), "status"),
    ],
    RejectReason.BAD_TIMESTAMP: [
        (encode(timestamp="2025-07-19T12:34:56"), "timestamp"),
        (encode(timestamp=1752928496), "timestamp"),
        (encode(timestamp="soon"), "timestamp"),
    ],
    RejectReason.BAD_COORDINATE: [case(encode(**{name: 500}), name) for name in COORDINATE_FIELDS]
    + [(encode(start_lat="40.1"), "start_lat"), (encode(end_lon=True), "end_lon")],
    RejectReason.INCOMPLETE_POSITION: [
        (encode(current_lon=...), None),
        (encode(current_lat=...), None),
        (encode(current_lat=None), None),
    ],
}


def mutations(rng: random.Random, base: bytes, count: int) -> list[bytes]:
    """``count`` copies of ``base``, each with one to four random byte edits (overwrite, delete,
    insert, truncate)."""
    out: list[bytes] = []
    for _ in range(count):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            kind = rng.randrange(4)
            at = rng.randrange(len(data)) if data else 0
            if kind == 0 and data:
                data[at] = rng.randrange(256)
            elif kind == 1 and data:
                del data[at : at + rng.randint(1, 8)]
            elif kind == 2:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            else:
                data = data[: rng.randrange(len(data) + 1)]
        out.append(bytes(data))
    return out


def fuzz_inputs() -> list[bytes]:
    """800 seeded inputs: random bytes, JSON-ish noise and byte mutations of valid messages."""
    rng = random.Random(0)
    inputs = [rng.randbytes(rng.randint(0, 64)) for _ in range(300)]
    alphabet = b'{}[]":,0123456789.-eE tnufalsNIy\\'
    inputs += [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(100)]
    inputs += mutations(rng, encode(), 300)
    inputs += mutations(rng, encode(current_lat=..., current_lon=...), 100)
    return inputs
