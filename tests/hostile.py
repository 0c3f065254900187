"""Hostile Kafka records for the chaos suite's fuzz scenario: a seeded generator, pure.

:func:`hostile_records` makes records meant to be refused, of every kind below, and a share of
odd but valid ones (:data:`ODD_VALID`), each labelled with its kind; :func:`mix` scatters them
among the records of a valid stream. The same arguments always give the same bytes.

Refused kinds: random bytes; truncated, deeply nested and otherwise broken JSON; wrong types
and wrong values per field; huge field values (a size given by the caller, up to 5 MB);
invalid UTF-8; empty values and tombstones (``value`` ``None``); JSON that is not an object.
Odd but valid: what a lenient producer sends and a job must land exactly as the record's
oracle (``tests/oracle.py``) says: unknown fields (huge, nested, of any type), keys in any
order, whitespace, escaped characters, exponents, a ``+00:00`` offset, every session fresh.

Whether a record is refused is ``parse_session``'s call (the input contract); the unit tests
(``tests/unit/test_hostile.py``) check that every refused kind is refused and every odd one
accepted, so a generator bug cannot pass for a job bug.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from jupiter_local.synthetic import REQUIRED_FIELDS

HUGE_BYTES: Final = 5 * 1024 * 1024
"""The size of a huge record: 5 MiB."""
LARGE_BYTES: Final = (1024, 1024 * 1024)
"""The range of a large (not huge) field: log-uniform between 1 KiB and 1 MiB."""
LARGE_SHARE: Final = 0.02
"""The share of records (other than the huge ones) given a large field."""
ODD_VALID_SHARE: Final = 0.1

FIELDS: Final = (*REQUIRED_FIELDS, "current_lat", "current_lon")
IDS: Final = FIELDS[:3]
COORDINATES: Final = FIELDS[5:]

ODD_VALID: Final = "odd_valid"
"""The kind of the valid records among the hostile ones."""


@dataclass(frozen=True, slots=True)
class Hostile:
    kind: str
    key: bytes | None
    value: bytes | None
    """``None``: a tombstone."""

    @property
    def refused(self) -> bool:
        """Meant to be refused (all but :data:`ODD_VALID`)."""
        return self.kind != ODD_VALID


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _message(rng: random.Random) -> dict[str, Any]:
    """A valid GPS ping of a fresh session: ``started``, so every job lands a row of it."""
    second = rng.randrange(86_400)
    return {
        "session_id": _uuid(rng),
        "vehicle_id": _uuid(rng),
        "order_id": _uuid(rng),
        "status": "started",
        "timestamp": f"2025-07-20T{second // 3600:02d}:{second // 60 % 60:02d}:"
        f"{second % 60:02d}.{rng.randrange(1000):03d}Z",
        "start_lat": round(rng.uniform(40.70, 40.80), 6),
        "start_lon": round(rng.uniform(-74.02, -73.93), 6),
        "end_lat": round(rng.uniform(40.70, 40.80), 6),
        "end_lon": round(rng.uniform(-74.02, -73.93), 6),
        "current_lat": round(rng.uniform(40.70, 40.80), 6),
        "current_lon": round(rng.uniform(-74.02, -73.93), 6),
    }


def _dump(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _text(rng: random.Random, size: int) -> str:
    """``size`` characters (bytes once UTF-8 and JSON-encoded, nearly) of a random flavour."""
    flavour = rng.randrange(4)
    if flavour == 0:
        return "x" * size
    if flavour == 1:
        return "".join(rng.choices("0123456789abcdef-", k=size))
    if flavour == 2:  # six bytes of JSON each
        return "\x01" * (size // 6)
    return "é" * (size // 2)  # two bytes of UTF-8 each


# --------------------------------------------------------------------------- refused kinds


def random_bytes(rng: random.Random, body: dict[str, Any]) -> bytes:
    return rng.randbytes(rng.randint(1, 600))


def truncated_json(rng: random.Random, body: dict[str, Any]) -> bytes:
    full = _dump(body)
    return full[: rng.randrange(1, len(full))]  # a strict prefix of an object is not JSON


def deep_nesting(rng: random.Random, body: dict[str, Any]) -> bytes:
    depth = rng.choice((150, 199, 200, 201, 256, 1_000, 10_000, 100_000))
    open_, close = rng.choice((("[", "]"), ('{"a":', "}"))) if depth < 10_000 else ("[", "]")
    nested = open_ * depth + "1" + close * depth
    if rng.random() < 0.5:
        return nested.encode()  # valid JSON only as deep as a parser allows; never an object
    field = rng.choice(("status", "timestamp", *IDS, *COORDINATES))
    text = _dump(body).decode()[:-1].replace(f'"{field}":', f'"_{field}":')
    return f'{text},"{field}":{nested}}}'.encode()


def broken_json(rng: random.Random, body: dict[str, Any]) -> bytes:
    text = _dump(body).decode()
    return rng.choice(
        (
            text.replace(",", ",,", 1),
            text.replace(":", "=", 1),
            text.replace('"', "'"),
            text + "}",
            text + text,
            text.replace('"status":"started"', '"status":"sta\x01rted"'),  # a raw control char
            text.replace('"status":"started"', '"status":"started\n"'),
            "\ufeff" + text,  # a byte-order mark
            text[:-1] + ',"start_lat":NaN}',
            text.replace(str(body["end_lat"]), "Infinity"),
            text.replace('"started"', '"\\x41"'),  # not a JSON escape
            text.replace('"started"', '"\\ud800"'),  # a lone surrogate escape
            " " * rng.randint(1, 8),
        )
    ).encode()


def wrong_type(rng: random.Random, body: dict[str, Any]) -> bytes:
    field = rng.choice(FIELDS)
    if field in COORDINATES:
        # null: a required coordinate missing, or a position with one coordinate
        values: tuple[Any, ...] = ("40.75", True, None, [40.75], {"v": 40.75}, "")
    elif field == "timestamp":
        values = (1_752_929_696_789, 1.7e12, True, None, ["2025-07-19T12:34:56.789Z"], {})
    else:
        values = (12345, 1.5, False, None, [body[field]], {"id": body[field]})
    body[field] = rng.choice(values)
    return _dump(body)


def wrong_value(rng: random.Random, body: dict[str, Any]) -> bytes:
    field = rng.choice(FIELDS)
    if field in COORDINATES:
        limit = 90 if field.endswith("_lat") else 180
        body[field] = rng.choice((limit + 1e-6, -limit - 0.5, 1e308, -1e308, limit * 2))
        if rng.random() < 0.3:  # a number no double holds
            return _dump(body).replace(_dump(body[field]), b"1e400", 1)
    elif field == "timestamp":
        body[field] = rng.choice(
            (
                "2025-07-19T12:34:56.789",
                "1999-12-31T23:59:59.999Z",
                "2100-01-01T00:00:00.000Z",
                "9999-12-31T23:59:59.999-23:59",
                "2025-02-30T12:00:00.000Z",
                "2025-07-19 12:34:56.789Z junk",
                "",
            )
        )
    elif field == "status":
        body[field] = rng.choice(("", "1started", "en route", "x" * 65, "started\u0000", "é"))
    else:
        good = body[field]
        body[field] = rng.choice((good[:-1], good + "0", good.replace("-", "_"), "", "null"))
    return _dump(body)


def missing_field(rng: random.Random, body: dict[str, Any]) -> bytes:
    del body[rng.choice(FIELDS[:9])]
    if rng.random() < 0.3:  # and many unknown ones
        body.update({f"k{i}": i for i in range(rng.randint(1_000, 10_000))})
    return _dump(body)


def not_utf8(rng: random.Random, body: dict[str, Any]) -> bytes:
    text = _dump(body)
    bad = rng.choice((b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80"))
    where = rng.randrange(len(text) + 1)
    if rng.random() < 0.3:
        return json.dumps(body).encode("utf-16")  # with its byte-order mark
    return text[:where] + bad + text[where:]


def empty(rng: random.Random, body: dict[str, Any]) -> bytes | None:
    return rng.choice((b"", None))


def not_an_object(rng: random.Random, body: dict[str, Any]) -> bytes:
    as_string = _dump(_dump(body).decode())  # the message as a JSON string
    return rng.choice(
        (b"[]", _dump([body]), b'"started"', b"123", b"-0.5e3", b"null", b"true", as_string)
    )


REFUSED: Final[dict[str, Callable[[random.Random, dict[str, Any]], bytes | None]]] = {
    "random_bytes": random_bytes,
    "truncated_json": truncated_json,
    "deep_nesting": deep_nesting,
    "broken_json": broken_json,
    "wrong_type": wrong_type,
    "wrong_value": wrong_value,
    "missing_field": missing_field,
    "not_utf8": not_utf8,
    "empty": empty,
    "not_an_object": not_an_object,
}


def huge_field(rng: random.Random, body: dict[str, Any], size: int) -> bytes:
    """A message of about ``size`` bytes, one field of it refused for its value: a string in
    an id, the status or the timestamp, a number of ``size`` digits in a coordinate, or a huge
    unknown field beside a missing one."""
    field = rng.choice((*IDS, "status", "timestamp", "start_lat", "unknown"))
    rest = len(_dump(body))
    if field == "start_lat":
        return _dump(body).replace(_dump(body[field]), b"1" * max(1, size - rest), 1)
    if field == "unknown":
        del body["vehicle_id"]
        body["blob"] = ""
        field = "blob"
    filler = _text(rng, max(1, size - rest))
    body[field] = filler if field != "timestamp" else "2025-07-19T12:34:56.789Z" + filler
    return _dump(body)


# --------------------------------------------------------------------------- odd but valid


def odd_valid(rng: random.Random, body: dict[str, Any], size: int | None) -> bytes:
    """``body`` spelled unusually, valid, with an unknown field of ``size`` bytes if given."""
    if size is not None:
        body["blob"] = _text(rng, size)
    for _ in range(rng.randint(1, 4)):
        extra: Any = rng.choice(
            (
                None,
                [1, "two", {"three": 3}],
                {"nested": {"deeper": [[[]]]}},
                "\u2028\u00e9\U0001f697",
                -0.0,
                1e308,
                "[" * 50 + "]" * 50,
            )
        )
        body[f"extra_{rng.randrange(1000)}"] = extra
    if rng.random() < 0.3:
        body["extra_nested"] = json.loads("[" * 150 + "]" * 150)
    if rng.random() < 0.3:
        body["timestamp"] = body["timestamp"].replace("Z", "+00:00")
    items = list(body.items())
    rng.shuffle(items)
    spelled = rng.randrange(3)
    if spelled == 0:
        return json.dumps(dict(items), indent=rng.choice((None, 1))).encode()  # spaces, \n
    if spelled == 1:
        return json.dumps(dict(items), ensure_ascii=True).encode()  # \u escapes
    text = json.dumps(dict(items), separators=(",", ":"))
    lat = json.dumps(body["start_lat"])  # 40.7527 as 0.407527e2: the same double
    whole, fraction = lat.split(".")
    return text.replace(f":{lat}", f":0.{whole}{fraction}e{len(whole)}", 1).encode()


# --------------------------------------------------------------------------- the generator


def hostile_records(
    count: int, seed: int, huge: int = 0, huge_bytes: int = HUGE_BYTES
) -> list[Hostile]:
    """``count`` records: ``huge`` of them of ``huge_bytes`` bytes (refused), about
    :data:`ODD_VALID_SHARE` odd but valid, the rest refused kinds in turn, in a random order.
    About :data:`LARGE_SHARE` of the others carry a large field (up to 1 MiB)."""
    assert 0 <= huge <= count
    rng = random.Random(seed)
    kinds = list(REFUSED)
    out: list[Hostile] = []
    for index in range(count):
        body = _message(rng)
        key: bytes | None = rng.choice((None, body["session_id"].encode(), rng.randbytes(16)))
        large = None
        if rng.random() < LARGE_SHARE:
            low, high = LARGE_BYTES
            large = int(low * (high / low) ** rng.random())
        value: bytes | None
        if index < huge:
            kind, value = "huge_field", huge_field(rng, body, huge_bytes)
        elif rng.random() < ODD_VALID_SHARE:
            kind, value = ODD_VALID, odd_valid(rng, body, large)
        elif large is not None:
            kind, value = "large_field", huge_field(rng, body, large)
        else:
            kind = kinds[index % len(kinds)]
            value = REFUSED[kind](rng, body)
        out.append(Hostile(kind, key, value))
    rng.shuffle(out)
    return out


def mix(
    valid: Sequence[tuple[bytes | None, bytes]], hostile: Sequence[Hostile], seed: int
) -> tuple[list[tuple[bytes | None, bytes | None]], list[int]]:
    """The valid records in their order with the hostile ones scattered among them, in theirs;
    and the index of each hostile record in the result."""
    rng = random.Random(seed)
    slots = sorted(rng.randrange(len(valid) + 1) for _ in hostile)
    out: list[tuple[bytes | None, bytes | None]] = []
    where: list[int] = []
    position = 0
    for slot, record in zip(slots, hostile, strict=True):
        out.extend(valid[position:slot])
        position = slot
        where.append(len(out))
        out.append((record.key, record.value))
    out.extend(valid[position:])
    return out, where
