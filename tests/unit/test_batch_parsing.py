"""parse_batch: every record of a batch gets exactly parse_session's verdict, values and
rejection, whichever path it takes; and the batch-level behaviour (empty, tiny, mixed, order,
the reader refusing a part).

The differential tests compare the two parsers on more than 100,000 records (see
``test_the_differential_tests_compare_over_100k_records``): synthetic streams with faults, the
parse_session corpus, hand-written cases for every gate of the fast path, and seeded fuzzing.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.json as pj
import pytest
from parsing_corpus import CASES, fuzz_inputs
from support import SEED

import jupiter_common.batch_parsing as batch_parsing
import jupiter_common.batch_parsing.checks as batch_checks
import jupiter_common.batch_parsing.reading as batch_reading
from jupiter_common.batch_parsing import MAX_BRACKETS, MAX_DIGITS, ParsedBatch, parse_batch
from jupiter_common.parsing import ParseResult, Rejection, parse_session
from jupiter_common.schema import COORDINATE_FIELDS, STATUS_PATTERN, SessionMessage
from jupiter_local.synthetic import GeneratorConfig, generate

IDS = ("session_id", "vehicle_id", "order_id")

# -- the comparison -----------------------------------------------------------------------------


def _shown(values: Sequence[bytes | None], index: int) -> str:
    value = values[index]
    text = repr(value if value is None or len(value) <= 300 else value[:300] + b"...")
    return f"record {index}: {text}"


def _float_bits(values: Sequence[float] | npt.NDArray[np.float64]) -> list[int]:
    """Each float as its bits, NaN as one value: equal bits, equal float (-0.0 != 0.0)."""
    array = np.asarray(values, np.float64)
    bits: list[int] = np.where(np.isnan(array), -1, array.view(np.int64)).tolist()
    return bits


def assert_agrees(values: Sequence[bytes | None], batch: ParsedBatch) -> None:
    """``batch`` holds, for every record, exactly what ``parse_session`` gives it."""
    count = len(values)
    expected: list[ParseResult] = [parse_session(value) for value in values]
    accepted = {i: r for i, r in enumerate(expected) if isinstance(r, SessionMessage)}
    refused = {i: r for i, r in enumerate(expected) if isinstance(r, Rejection)}

    assert batch.valid.dtype == np.bool_
    assert batch.valid.shape == (count,)
    wrong = [i for i in range(count) if bool(batch.valid[i]) != (i in accepted)]
    assert not wrong, [(_shown(values, i), expected[i]) for i in wrong[:5]]
    assert dict(batch.rejections) == refused, [
        (_shown(values, i), batch.rejections.get(i), refused.get(i))
        for i in sorted(set(refused) | set(batch.rejections))
        if batch.rejections.get(i) != refused.get(i)
    ][:5]

    for name in (*IDS, "status"):
        got = getattr(batch, name)
        assert isinstance(got, pa.StringArray), (name, type(got))
        want: list[str | None] = [None] * count
        for i, message in accepted.items():
            want[i] = str(getattr(message, name))
        got_list = got.to_pylist()
        wrong = [i for i in range(count) if got_list[i] != want[i]]
        assert not wrong, [(name, _shown(values, i), got_list[i], want[i]) for i in wrong[:5]]

    assert batch.timestamp_ms.dtype == np.int64
    want_ms = [0] * count
    for i, message in accepted.items():
        want_ms[i] = message.timestamp_ms
    wrong = [i for i in range(count) if int(batch.timestamp_ms[i]) != want_ms[i]]
    assert not wrong, [(_shown(values, i), batch.timestamp_ms[i], want_ms[i]) for i in wrong[:5]]

    for name in COORDINATE_FIELDS:
        got_array = getattr(batch, name)
        assert got_array.dtype == np.float64, name
        want_floats = [math.nan] * count
        for i, message in accepted.items():
            value = getattr(message, name)
            want_floats[i] = math.nan if value is None else value
        got_bits, want_bits = _float_bits(got_array), _float_bits(want_floats)
        wrong = [i for i in range(count) if got_bits[i] != want_bits[i]]
        assert not wrong, [
            (name, _shown(values, i), got_array[i], want_floats[i]) for i in wrong[:5]
        ]

    pings = [i in accepted and accepted[i].is_ping for i in range(count)]
    assert batch.has_position.tolist() == pings


@pytest.fixture(autouse=True)
def fast_path_never_fails(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """parse_batch falls back to parse_session if its fast path raises (and logs it): that
    safety net must not quietly stand in for the fast path in these tests."""
    yield
    failures = [r for r in caplog.records if r.name == batch_parsing.__name__]
    assert not failures, failures[0].getMessage()


@dataclass
class Spy:
    """Counts the records that took the slow path (``parse_session`` inside parse_batch)."""

    calls: int = 0
    accepted: int = 0


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    counts = Spy()

    def counting(raw: bytes | None) -> ParseResult:
        counts.calls += 1
        result = parse_session(raw)
        counts.accepted += isinstance(result, SessionMessage)
        return result

    monkeypatch.setattr(batch_parsing, "parse_session", counting)
    return counts


def in_batches(
    values: Sequence[bytes | None], sizes: Sequence[int], seed: int
) -> Iterator[list[bytes | None]]:
    """``values`` cut into consecutive batches whose sizes are drawn from ``sizes``."""
    rng = random.Random(seed)
    start = 0
    while start < len(values):
        size = rng.choice(sizes)
        yield list(values[start : start + size])
        start += size


def check_in_batches(values: Sequence[bytes | None], sizes: Sequence[int], seed: int) -> int:
    """Compare batch by batch; the number of valid records."""
    valid = 0
    for batch_values in in_batches(values, sizes, seed):
        batch = parse_batch(batch_values)
        assert_agrees(batch_values, batch)
        valid += int(batch.valid.sum())
    return valid


# -- the records ----------------------------------------------------------------------------------

SYNTHETIC_SEEDS = (1, 2, 3, 4)
FUZZ_SEEDS = (11, 12, 13)
FUZZ_RECORDS_PER_SEED = 13_000


@cache
def synthetic(seed: int) -> tuple[tuple[bytes | None, ...], int]:
    """A generated stream with duplicates, reordered and malformed records; its malformed count."""
    config = GeneratorConfig(
        sessions=330,
        pings_per_session=45,
        seed=seed,
        duplicate_ratio=0.03,
        reorder_ratio=0.03,
        malformed_count=240,
    )
    stream = generate(config)
    return tuple(record.value for record in stream.records), stream.expected.malformed


@cache
def clean_values() -> tuple[bytes, ...]:
    """Valid records as the generator writes them (the fast path's everyday input)."""
    stream = generate(GeneratorConfig(sessions=40, pings_per_session=20, seed=99))
    return tuple(record.value for record in stream.records if record.kind == "valid")


def corpus() -> list[bytes | None]:
    """parse_session's own test inputs (tests/parsing_corpus.py)."""
    return [raw for cases in CASES.values() for raw, _ in cases] + list(fuzz_inputs())


def dumps(
    changes: dict[str, Any] | None = None, *, raw: dict[str, str] | None = None, tail: str = ""
) -> bytes:
    """The seed message as compact JSON with ``changes`` (``...`` removes a field), ``raw``
    fields spliced in as literal JSON text (``-0``, ``NaN``, ``1e400``), and ``tail`` before
    the closing brace."""
    data = dict(SEED)
    for key, value in (changes or {}).items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    for key in raw or {}:
        data[key] = f"@raw:{key}@"
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    for key, literal in (raw or {}).items():
        text = text.replace(json.dumps(f"@raw:{key}@"), literal)
    return (text[:-1] + tail + "}").encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


SEED_BYTES = dumps()
SID = SEED["session_id"]
HEX = SID.replace("-", "")

# Each gate of the fast path and each rule of the input contract, by name. Valid and refused,
# common and absurd: the comparison decides, not the name.
EDGE_CASES: dict[str, bytes | None] = {
    # framing: what the Arrow reader is allowed to see
    "canonical": SEED_BYTES,
    "status message": dumps({"current_lat": ..., "current_lon": ...}),
    "tombstone": None,
    "empty value": b"",
    "one space": b" ",
    "empty object": b"{}",
    "BOM then object": b"\xef\xbb\xbf" + SEED_BYTES,
    "BOM inside, between tokens": SEED_BYTES.replace(b',"status"', b',\xef\xbb\xbf"status"'),
    "leading space": b" " + SEED_BYTES,
    "trailing space": SEED_BYTES + b" ",
    "trailing newline": SEED_BYTES + b"\n",
    "leading newline": b"\n" + SEED_BYTES,
    "CRLF between tokens": SEED_BYTES.replace(b',"status"', b',\r\n"status"'),
    "CR between tokens": SEED_BYTES.replace(b',"status"', b',\r"status"'),
    "newline between tokens": SEED_BYTES.replace(b',"status"', b',\n"status"'),
    "tab between tokens": SEED_BYTES.replace(b',"status"', b',\t"status"'),
    "form feed between tokens": SEED_BYTES.replace(b',"status"', b',\x0c"status"'),
    "no-break space between tokens": SEED_BYTES.replace(b',"status"', b',\xc2\xa0"status"'),
    "two objects in one value": SEED_BYTES + SEED_BYTES,
    "two objects, a space between": SEED_BYTES + b" " + SEED_BYTES,
    "two objects, a newline between": SEED_BYTES + b"\n" + SEED_BYTES,
    "object then garbage": SEED_BYTES + b"x",
    "object then a closing brace": SEED_BYTES + b"}",
    "object then NUL": SEED_BYTES + b"\x00",
    "open object only": SEED_BYTES[:-1],
    "object cut after a colon": SEED_BYTES[: SEED_BYTES.index(b":") + 1],
    "object wrapped in an array": b"[" + SEED_BYTES + b"]",
    "brace-framed noise": b"{" + b"x" * 40 + b"}",
    "Python repr": repr(SEED).encode(),
    "comment inside": SEED_BYTES[:-1] + b"/* c */}",
    "trailing comma": SEED_BYTES[:-1] + b",}",
    "single-quoted key": SEED_BYTES[:-1] + b",'x':1}",
    "JSON array": b"[1,2]",
    "JSON null": b"null",
    "JSON string": b'"text"',
    "JSON number": b"42",
    # NaN and infinities: jiter takes NaN, Infinity, -Infinity; RapidJSON also Inf, -Inf, -NaN
    "NaN in an ignored field": dumps(tail=',"x":NaN'),
    "Infinity in an ignored field": dumps(tail=',"x":Infinity'),
    "-Infinity in an ignored field": dumps(tail=',"x":-Infinity'),
    "Inf in an ignored field": dumps(tail=',"x":Inf'),
    "-Inf in an ignored field": dumps(tail=',"x":-Inf'),
    "-NaN in an ignored field": dumps(tail=',"x":-NaN'),
    "nan in an ignored field": dumps(tail=',"x":nan'),
    "NaN coordinate": dumps(raw={"start_lat": "NaN"}),
    "Infinity coordinate": dumps(raw={"end_lon": "Infinity"}),
    "-Infinity current coordinate": dumps(raw={"current_lat": "-Infinity"}),
    "Inf coordinate": dumps(raw={"start_lat": "Inf"}),
    "NaN status literal": dumps(raw={"status": "NaN"}),
    "Infinity status literal": dumps(raw={"status": "Infinity"}),
    "status the string NaN": dumps({"status": "NaN"}),
    "status the string Infinity": dumps({"status": "Infinity"}),
    "string mentioning Inf in an ignored field": dumps({"note": "Info: NaN-free"}),
    # UTF-8: parse_session decodes strictly before parsing; Arrow skips ignored fields
    "invalid UTF-8 in an ignored field": dumps(tail=',"x":"\xff"').replace(b"\xc3\xbf", b"\xff"),
    "overlong UTF-8 in an ignored field": SEED_BYTES[:-1] + b',"x":"\xc0\xaf"}',
    "UTF-8 surrogate in an ignored field": SEED_BYTES[:-1] + b',"x":"\xed\xa0\x80"}',
    "truncated UTF-8 in an ignored field": SEED_BYTES[:-1] + b',"x":"\xe2\x82"}',
    "latin-1 in the status": SEED_BYTES.replace(b'"en_route"', b'"en_rout\xe9"'),
    "valid UTF-8 in an ignored field": dumps({"note": "caf\u00e9 \U0001f697 \u2028"}),
    "valid UTF-8 in the status": dumps({"status": "caf\u00e9"}),
    "valid UTF-8 in the session id": dumps({"session_id": SID[:-1] + "\u00e9"}),
    # nesting: jiter refuses more than about 200 levels, RapidJSON has no limit
    **{
        f"ignored arrays nested {d} deep": dumps(tail=f',"x":{nested(d)}')
        for d in (1, 127, 128, 129, 198, 199, 200, 201, 1000)
    },
    **{
        f"ignored objects nested {d} deep": dumps(tail=f',"x":{nested_objects(d)}')
        for d in (100, 199, 200)
    },
    "many shallow brackets": dumps(tail=',"x":[' + ",".join(["[]"] * 300) + "]"),
    # long numbers: jiter refuses more than 4,300 digits before the point, RapidJSON does not
    **{
        f"ignored number of {label}": dumps(tail=f',"x":{literal}')
        for label, literal in (
            ("1,000 digits", "7" * 1000),
            ("1,001 digits", "7" * 1001),
            ("4,300 digits", "7" * 4300),
            ("4,301 digits", "7" * 4301),
            ("-4,301 digits", "-" + "7" * 4301),
            ("4,301 digits and a fraction", "7" * 4301 + ".5"),
            ("4,301 digits and an exponent", "7" * 4301 + "e-4301"),
            ("5,000 fraction digits", "0." + "7" * 5000),
            ("a 5,000-digit exponent", "1e-" + "0" * 4999 + "1"),
            ("100,000 digits", "7" * 100_000),
        )
    },
    "start_lat of 4,301 digits": dumps(raw={"start_lat": "4" * 4301}),
    "start_lon of 4,301 digits, an exponent back in range": dumps(
        raw={"start_lon": "1" * 4301 + "e-4299"}
    ),
    "start_lat with 5,000 zeros after the point": dumps(raw={"start_lat": "40." + "0" * 5000}),
    "ignored string of 5,000 digits": dumps({"x": "7" * 5000}),
    "noncharacters": dumps({"x": "\uffff\ufffe"}),
    "escaped noncharacters": dumps(tail=',"x":"\\uffff\\ufffe"'),
    "deep nesting in the status": dumps(raw={"status": nested(300)}),
    "nesting 400,000 deep": dumps(tail=f',"x":{nested(400_000)}'),
    # strings and escapes
    "raw tab in an ignored string": SEED_BYTES[:-1] + b',"x":"a\tb"}',
    "raw control byte in an ignored string": SEED_BYTES[:-1] + b',"x":"a\x01b"}',
    "raw NUL in an ignored string": SEED_BYTES[:-1] + b',"x":"a\x00b"}',
    "raw DEL in an ignored string": SEED_BYTES[:-1] + b',"x":"a\x7fb"}',
    "escaped NUL in the status": dumps({"status": "en\u0000route"}),
    "escaped letters in the status": SEED_BYTES.replace(b'"en_route"', b'"\\u0065n_route"'),
    "escaped letters in an id": SEED_BYTES.replace(SID.encode(), b"\\u0066" + SID[1:].encode()),
    "escaped slash in an ignored string": SEED_BYTES[:-1] + b',"x":"\\/"}',
    "escaped newline at the end of the status": dumps({"status": "arrived\n"}),
    "lone high surrogate escape": SEED_BYTES[:-1] + b',"x":"\\ud800"}',
    "lone low surrogate escape": SEED_BYTES[:-1] + b',"x":"\\udc00"}',
    "surrogate pair escape": SEED_BYTES[:-1] + b',"x":"\\ud83d\\ude97"}',
    "high surrogate then a letter escape": SEED_BYTES[:-1] + b',"x":"\\ud800\\u0041"}',
    "invalid escape": SEED_BYTES[:-1] + b',"x":"\\q"}',
    "short unicode escape": SEED_BYTES[:-1] + b',"x":"\\u12"}',
    # keys
    "duplicate status, last valid": dumps(tail=',"status":"arrived"'),
    "duplicate status, last invalid": dumps(tail=',"status":"no way"'),
    "duplicate status, first invalid": dumps({"status": "no way"}, tail=',"status":"arrived"'),
    "duplicate session id": dumps(tail=f',"session_id":"{uuid.UUID(int=7)}"'),
    "duplicate coordinate": dumps(tail=',"start_lat":1.5'),
    "duplicate current_lat null": dumps(tail=',"current_lat":null'),
    "duplicate key spelled with an escape": dumps(tail=',"st\\u0061tus":"arrived"'),
    "duplicate ignored key": dumps(tail=',"x":1,"x":"two"'),
    "key spelled with an escape": SEED_BYTES.replace(b'"status"', b'"st\\u0061tus"'),
    "key with a NUL escape instead of status": dumps(
        {"status": ...}, tail=',"status\\u0000":"started"'
    ),
    "status key in a nested object only": dumps({"status": ...}, tail=',"x":{"status":"started"}'),
    "schema keys nested in an ignored field": dumps(tail=',"x":{"session_id":5,"start_lat":"a"}'),
    "empty key": dumps(tail=',"":1'),
    "keys in another order": json.dumps(dict(reversed(SEED.items()))).encode(),
    "uppercase key": dumps({"status": ...}, tail=',"Status":"started"'),
    # types where numbers belong
    **{
        f"{f} {label}": dumps(raw={f: literal})
        for f in ("start_lat", "current_lon")
        for label, literal in (
            ("true", "true"),
            ("false", "false"),
            ("string", '"40.1"'),
            ("null", "null"),
            ("array", "[40.1]"),
            ("object", '{"v":1}'),
        )
    },
    # types where strings belong
    **{
        f"{f} {label}": dumps(raw={f: literal})
        for f in ("session_id", "status", "timestamp")
        for label, literal in (
            ("number", "7"),
            ("true", "true"),
            ("null", "null"),
            ("array", '["a"]'),
            ("object", "{}"),
            ("float", "1.5"),
        )
    },
    # numbers
    **{
        f"start_lat {literal}": dumps(raw={"start_lat": literal})
        for literal in (
            "90",
            "90.0",
            "-90",
            "9e1",
            "90.00000000000001",
            "90.0000001",
            "-90.00000000000001",
            "0",
            "0.0",
            "-0",
            "-0.0",
            "-0e0",
            "0e-5",
            "1e-400",
            "-1e-400",
            "5e-324",
            "-5e-324",
            "2.2250738585072014e-308",
            "1e400",
            "-1e400",
            "1e308",
            "1" + "0" * 400,
            "-" + "9" * 40,
            "40",
            "40.75270000000000000000000000000000001",
            "40.7527e0",
            "4075.27e-2",
            "0.0000000000000000000000004075270e26",
            "40.752699999999999999999999",
            "40.7527E+0",
            "4e1",
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "0x10",
            "1_000",
        )
    },
    **{
        f"end_lon {literal}": dumps(raw={"end_lon": literal})
        for literal in ("180", "-180", "180.0000001", "-180.00000000000003", "1.8e2", "-0")
    },
    "null island ping": dumps({"current_lat": 0, "current_lon": 0.0}),
    "negative-zero ping": dumps(raw={"current_lat": "-0.0", "current_lon": "-0"}),
    "current_lat out of range": dumps({"current_lat": 90.5}),
    "current_lon out of range": dumps({"current_lon": -180.5}),
    "current both null": dumps({"current_lat": None, "current_lon": None}),
    "current_lat null only": dumps({"current_lat": None}),
    "current_lon only": dumps({"current_lat": ...}),
    "current_lat only, out of range": dumps({"current_lat": 91, "current_lon": ...}),
    # UUIDs
    "uppercase ids": dumps({f: SEED[f].upper() for f in IDS}),
    "mixed-case session id": dumps({"session_id": SID[:10].upper() + SID[10:]}),
    "braced session id": dumps({"session_id": "{" + SID + "}"}),
    "unhyphenated session id": dumps({"session_id": HEX}),
    "urn session id": dumps({"session_id": "urn:uuid:" + SID}),
    "session id with misplaced hyphens": dumps(
        {"session_id": "-".join((HEX[:12], HEX[12:16], HEX[16:20], HEX[20:24], HEX[24:]))}
    ),
    "session id too short": dumps({"session_id": SID[:-1]}),
    "session id too long": dumps({"session_id": SID + "0"}),
    "session id with g": dumps({"session_id": SID[:-1] + "g"}),
    "session id padded": dumps({"session_id": " " + SID}),
    "nil uuid": dumps({"session_id": "00000000-0000-0000-0000-000000000000"}),
    "max uuid": dumps({"session_id": "ffffffff-ffff-ffff-ffff-ffffffffffff"}),
    "fullwidth digit in the session id": dumps({"session_id": "\uff11" + SID[1:]}),
    "empty vehicle id": dumps({"vehicle_id": ""}),
    # status
    **{
        f"status {value!r}": dumps({"status": value})
        for value in (
            "",
            " ",
            "a" * 64,
            "a" * 65,
            "en route",
            " arrived",
            "1st",
            "_x",
            "A",
            "x-1.b_2",
            "CANCELLED",
            "z" * 63 + "\u00e9",
            "started\u0000",
        )
    },
    # timestamps: only YYYY-MM-DDTHH:MM:SS.mmmZ is fast; every other spelling asks parse_session
    **{
        f"timestamp {value}": dumps({"timestamp": value})
        for value in (
            "2025-07-19T12:34:56.789Z",
            "2025-07-19T12:34:56.789+00:00",
            "2025-07-19T14:34:56.789+02:00",
            "2025-07-19T07:04:56.789-05:30",
            "2025-07-20T02:34:56.789+14:00",
            "2025-07-19T12:34:56.789-00:00",
            "2025-07-19T12:34:56.789+0200",
            "2025-07-19T12:34:56.789+02",
            "2025-07-19T12:34:56Z",
            "2025-07-19T12:34:56.7Z",
            "2025-07-19T12:34:56.78Z",
            "2025-07-19T12:34:56.7899Z",
            "2025-07-19T12:34:56.789999Z",
            "2025-07-19T12:34:56.789123456Z",
            "2025-07-19T12:34Z",
            "2025-07-19t12:34:56.789Z",
            "2025-07-19T12:34:56.789z",
            "2025-07-19 12:34:56.789Z",
            "20250719T123456.789Z",
            "2025-W29-6T12:34:56.789Z",
            "2025-200T12:34:56.789Z",
            "2025-07-19T12:34:56,789Z",
            "2025-07-19T12:34:56.789",
            "2025-07-19",
            "2025-07-19T12:34:56.789 Z",
            " 2025-07-19T12:34:56.789Z",
            "2025-07-19T12:34:56.789Z ",
            "2025-07-19T12:34:56.789Z\n",
            "2024-02-29T23:59:59.999Z",
            "2025-02-29T00:00:00.000Z",
            "2000-02-29T00:00:00.000Z",
            "2100-02-29T00:00:00.000Z",
            "2025-02-30T00:00:00.000Z",
            "2025-04-31T00:00:00.000Z",
            "2025-13-01T00:00:00.000Z",
            "2025-00-10T00:00:00.000Z",
            "2025-07-00T00:00:00.000Z",
            "2025-07-32T00:00:00.000Z",
            "2025-07-19T24:00:00.000Z",
            "2025-07-19T23:60:00.000Z",
            "2025-07-19T23:59:60.000Z",
            "2025-07-19T25:61:00.000Z",
            "1999-12-31T23:59:59.999Z",
            "2000-01-01T00:00:00.000Z",
            "2099-12-31T23:59:59.999Z",
            "2100-01-01T00:00:00.000Z",
            "2000-01-01T00:59:59.999+01:00",
            "2100-01-01T00:59:59.999+01:00",
            "1970-01-01T00:00:00.000Z",
            "0001-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "\uff12025-07-19T12:34:56.789Z",
            "2025-07-19T12:34:56.789\u0000",
            "2025-07-1912:34:56.789Z",
            "yesterday",
            "",
            "x" * 24,
        )
    },
    # size
    "huge timestamp": dumps({"timestamp": "2025-07-19T12:34:56.789" + "9" * 500_000}),
    "huge status": dumps({"status": "a" * 1_000_000}),
    "huge ignored field": dumps({"extra": "\x01" * 200_000}),
    "huge ignored key": dumps(tail=',"' + "k" * 100_000 + '":[1]'),
    "every field huge": json.dumps({key: "\x01" * 50_000 for key in SEED}).encode(),
    "ignored fields of every type": dumps(
        {"a": 1, "b": 1.5, "c": None, "d": True, "e": [1, "x", None], "f": {"g": {"h": []}}}
    ),
}


def mixed_into_clean(value: bytes | None, at: int = 30, count: int = 60) -> list[bytes | None]:
    """``value`` among valid records, in a batch large enough for the Arrow reader."""
    clean = list(clean_values()[:count])
    return [*clean[:at], value, *clean[at:]]


# -- seeded fuzzing -------------------------------------------------------------------------------

_SPECIAL_NUMBERS = (
    "0",
    "-0",
    "0.0",
    "-0.0",
    "-0e0",
    "1e-400",
    "-1e-400",
    "5e-324",
    "1e400",
    "-1e400",
    "1e308",
    "90",
    "-90",
    "180",
    "-180",
    "90.00000000000001",
    "-180.00000000000003",
    "89.99999999999999",
    "1" + "0" * 30,
    "12345678901234567890",
    "NaN",
    "Infinity",
    "-Infinity",
    "Inf",
    "-NaN",
    "true",
    "null",
    '"1.5"',
    "[]",
    "{}",
    "4E1",
    "40.7527e0",
    "0.000000000000000000000040752e24",
)
_SPECIAL_STRINGS = (
    "",
    " ",
    "NaN",
    "Inf",
    "\u00e9",
    "\U0001f697",
    "\u2028",
    "\\",
    '"',
    "\x00",
    "\x7f",
    "a" * 65,
)
_TYPE_SWAPS: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    1.5,
    -7,
    "",
    "text",
    [],
    {},
    [1],
    {"a": 1},
    10**20,
)
_ZONES = (
    "Z",
    "z",
    "+00:00",
    "-00:00",
    "+02:00",
    "-05:30",
    "+14:00",
    "-23:59",
    "",
    "+0200",
    "+02",
    " Z",
)


def _random_number(rng: random.Random, field: str) -> str:
    kind = rng.randrange(5)
    limit = 90 if field.endswith("lat") else 180
    if kind == 0:
        return rng.choice(_SPECIAL_NUMBERS)
    if kind == 1:
        return repr(rng.uniform(-limit * 1.01, limit * 1.01))
    if kind == 2:  # many digits, exponents: both parsers must round the same way
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40)))
        point = rng.randint(0, len(digits))
        mantissa = (digits[:point] or "0") + ("." + digits[point:] if digits[point:] else "")
        exponent = f"e{rng.randint(-30, 5)}" if rng.random() < 0.5 else ""
        return rng.choice(("", "-")) + mantissa + exponent
    if kind == 3:
        return str(rng.randint(-limit - 2, limit + 2))
    return repr(
        math.nextafter(float(limit) * rng.choice((1, -1)), rng.choice((math.inf, -math.inf)))
    )


def _random_timestamp(rng: random.Random) -> str:
    year = rng.choice((rng.randint(1998, 2101), 2000, 2099, 2100, 1999, 2024, 2025))
    month, day = rng.randint(0, 13), rng.randint(0, 32)
    hour, minute, second = rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)
    if rng.random() < 0.7:  # mostly plausible, so the calendar checks get exercised
        month, day = rng.randint(1, 12), rng.randint(1, 31 if rng.random() < 0.8 else 29)
        hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    fraction = "".join(
        rng.choice("0123456789") for _ in range(rng.choice((3, 3, 3, 0, 1, 2, 4, 6, 9)))
    )
    zone = rng.choice(_ZONES) if rng.random() < 0.4 else "Z"
    sep = rng.choice("TTTTT t")
    text = f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}"
    return text + (f".{fraction}" if fraction else "") + zone


def _random_uuid(rng: random.Random) -> str:
    text = str(uuid.UUID(int=rng.getrandbits(128)))
    kind = rng.randrange(10)
    if kind == 0:
        return text.upper()
    if kind == 1:
        return "{" + text + "}"
    if kind == 2:
        return text.replace("-", "")
    if kind == 3:
        return "urn:uuid:" + text
    if kind == 4:
        at = rng.randrange(len(text))
        return text[:at] + rng.choice("gG-x ") + text[at + 1 :]
    if kind == 5:
        return text[: rng.randrange(len(text))]
    return text


def _random_status(rng: random.Random) -> str:
    alphabet = "abcXYZ019_.- \u00e9\n"
    first = rng.choice("aZ_1. ") if rng.random() < 0.2 else rng.choice("abcXYZ")
    return first + "".join(
        rng.choice(alphabet if rng.random() < 0.1 else "abc_.-9")
        for _ in range(rng.choice((0, 3, 10, 62, 63, 64, 70)))
    )


def _random_extra(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(6 if depth < 4 else 3)
    if kind == 0:
        return rng.choice(_SPECIAL_STRINGS) + "".join(
            chr(rng.randint(32, 0x2FF)) for _ in range(rng.randint(0, 8))
        )
    if kind == 1:
        return rng.choice((0, -1, 1.5, 1e300, 10**30, True, None))
    if kind == 2:
        return "x" * rng.randint(0, 50)
    if kind == 3:
        return [_random_extra(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {f"k{i}": _random_extra(rng, depth + 1) for i in range(rng.randint(0, 3))}


def _fuzzed_record(rng: random.Random, base: dict[str, Any]) -> bytes:
    """One or more structured mutations of a valid message, then perhaps a few byte edits."""
    data: dict[str, Any] = dict(base)
    raw: dict[str, str] = {}  # fields written as literal JSON text
    tail: list[str] = []  # members appended as literal JSON text
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        field = rng.choice(list(SEED))
        kind = rng.randrange(11)
        if kind == 0:
            data.pop(field, None)
        elif kind == 1:
            data[field] = rng.choice(_TYPE_SWAPS)
        elif kind == 2 and field in COORDINATE_FIELDS:
            raw[field] = _random_number(rng, field)
        elif kind in (2, 3):
            data["timestamp"] = _random_timestamp(rng)
        elif kind == 4:
            data[rng.choice(IDS)] = _random_uuid(rng)
        elif kind == 5:
            data["status"] = _random_status(rng)
        elif kind == 6:  # a duplicate key, perhaps spelled with an escape
            key = field if rng.random() < 0.7 else f"{field[0]}\\u{ord(field[1]):04x}{field[2:]}"
            again = (
                json.dumps(base.get(field)) if rng.random() < 0.5 else _random_number(rng, field)
            )
            tail.append(f'"{key}":{again}')
        elif kind == 7:
            data[f"extra{rng.randrange(5)}"] = _random_extra(rng)
        elif kind == 8:
            literals = ("NaN", "Infinity", "-Infinity", "Inf", "-Inf", "-NaN")
            depth = rng.choice((3, 150, 199, 200, 201))
            digits = "9" * rng.choice((1000, 4300, 4301))
            tail.append(f'"z":{rng.choice((*literals, nested(depth), digits))}')
        elif kind == 9 and isinstance(data.get(field), str):
            text = data[field]
            at = rng.randrange(len(text) + 1)
            odd = rng.choice(("\u00e9", "\U0001f697", "\x00", "\u2028", "\ud800", "\n"))
            data[field] = text[:at] + odd + text[at:]
        else:
            data["current_lat"], data["current_lon"] = rng.choice(
                ((None, None), (0, 0), (None, 1.0), (1.0, None), (-90, 180), (90.5, 0))
            )
    items = [(key, value) for key, value in data.items() if key not in raw]
    if rng.random() < 0.1:
        rng.shuffle(items)
    comma, colon = rng.choice(((",", ":"), (", ", ": "), (",\t", ":")))
    body = json.dumps(dict(items), ensure_ascii=rng.random() < 0.5, separators=(comma, colon))[1:-1]
    members = [body] if body else []
    members += [f'"{key}"{colon}{literal}' for key, literal in raw.items()] + tail
    value = ("{" + comma.join(members) + "}").encode("utf-8", "surrogatepass")
    if rng.random() < 0.15:
        edits = bytearray(value)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(edits) + 1)
            choice = rng.randrange(3)
            if choice == 0 and at < len(edits):
                edits[at] = rng.randrange(256)
            elif choice == 1:
                del edits[at : at + rng.randint(1, 4)]
            else:
                edits[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
        value = bytes(edits)
    return value


@cache
def fuzzed(seed: int) -> tuple[bytes | None, ...]:
    """Seeded mutations of valid messages, mixed with the valid messages themselves."""
    rng = random.Random(seed)
    bases = [json.loads(value) for value in clean_values()[:200]] + [dict(SEED)]
    values: list[bytes | None] = []
    for _ in range(FUZZ_RECORDS_PER_SEED):
        base = rng.choice(bases)
        values.append(
            _fuzzed_record(rng, base) if rng.random() < 0.75 else json.dumps(base).encode()
        )
    return tuple(values)


# -- the differential tests -----------------------------------------------------------------------

BATCH_SIZES = (1, 7, 23, 24, 100, 1000, 4096, 10_000)


@pytest.mark.parametrize("seed", SYNTHETIC_SEEDS)
def test_agrees_on_synthetic_streams(seed: int, spy: Spy) -> None:
    """Generated streams with duplicates, reordered and malformed records, in Flink-sized
    batches: every verdict agrees, and the valid records are read on the fast path."""
    values, malformed = synthetic(seed)
    check_in_batches(values, (10_000,), seed)
    assert spy.calls - spy.accepted == malformed  # every refusal, each parsed once
    assert spy.accepted <= len(values) // 100  # a bad record sends few good ones the slow way


def test_agrees_on_the_parse_session_corpus() -> None:
    """parse_session's own test inputs, alone and among valid records."""
    values = corpus()
    assert_agrees(values, parse_batch(values))
    clean = list(clean_values())
    mixed = [value for pair in zip(values, clean * 2, strict=False) for value in pair]
    check_in_batches(mixed, BATCH_SIZES, 0)


@pytest.mark.parametrize("value", list(EDGE_CASES.values()), ids=list(EDGE_CASES))
def test_agrees_on_edge_case(value: bytes | None) -> None:
    """Each gate of the fast path, and each rule of the input contract: among valid records
    (so the Arrow reader sees the batch; first, in the middle, last), and alone."""
    for at in (0, 30, 60):
        values = mixed_into_clean(value, at)
        assert_agrees(values, parse_batch(values))
    assert_agrees([value], parse_batch([value]))


@pytest.fixture
def exhaustive_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read every piece Arrow accepts, however small and however many refusals it takes, so
    that as many records as possible face the fast path's checks."""
    monkeypatch.setattr(batch_reading, "MIN_READ_RECORDS", 1)
    monkeypatch.setattr(batch_reading, "MAX_FAILED_READS", 10**9)


@pytest.mark.usefixtures("exhaustive_reading")
@pytest.mark.parametrize("seed", FUZZ_SEEDS)
def test_agrees_on_fuzzed_records(seed: int, spy: Spy) -> None:
    """Seeded mutations of valid messages (deleted fields, swapped types, byte edits, unicode,
    extreme numbers, timestamp and UUID spellings, duplicate keys, extra fields), in batches
    of many sizes; a third of the records are valid and proven so by the fast path."""
    values = fuzzed(seed)
    valid = check_in_batches(values, BATCH_SIZES, seed)
    assert valid - spy.accepted > len(values) // 3


def test_agrees_on_fuzzed_records_read_as_in_production() -> None:
    """The same with the default reading: most of a fuzzed batch ends up on the slow path."""
    check_in_batches(fuzzed(FUZZ_SEEDS[0]), BATCH_SIZES, 0)


# Valid or not, these never reach the fast path's checks: parse_session decides.
GATED: dict[str, bytes | None] = {
    "CR between tokens": EDGE_CASES["CR between tokens"],
    "newline between tokens": EDGE_CASES["newline between tokens"],
    "BOM then object": EDGE_CASES["BOM then object"],
    "leading space": EDGE_CASES["leading space"],
    "trailing space": EDGE_CASES["trailing space"],
    "NaN in an ignored field": EDGE_CASES["NaN in an ignored field"],
    "Infinity in an ignored field": EDGE_CASES["Infinity in an ignored field"],
    "status the string NaN": EDGE_CASES["status the string NaN"],
    "ignored arrays nested 129 deep": EDGE_CASES["ignored arrays nested 129 deep"],
    "many shallow brackets": EDGE_CASES["many shallow brackets"],
    "4,301 digits": EDGE_CASES["ignored number of 4,301 digits"],
    "5,000 digits in a string": EDGE_CASES["ignored string of 5,000 digits"],
    "invalid UTF-8 in an ignored field": EDGE_CASES["invalid UTF-8 in an ignored field"],
    "-0": EDGE_CASES["start_lat -0"],
    "-0.0": EDGE_CASES["start_lat -0.0"],
    "uppercase ids": EDGE_CASES["uppercase ids"],
    "braced session id": EDGE_CASES["braced session id"],
    "offset timestamp": EDGE_CASES["timestamp 2025-07-19T14:34:56.789+02:00"],
    "microseconds": EDGE_CASES["timestamp 2025-07-19T12:34:56.789999Z"],
    "duplicate key": EDGE_CASES["duplicate status, last valid"],
}


@pytest.mark.parametrize("at", [0, 30, 60])
@pytest.mark.parametrize("value", list(GATED.values()), ids=list(GATED))
def test_gated_values_take_the_slow_path(value: bytes | None, at: int, spy: Spy) -> None:
    """Each gate holds a record back from the fast path (and only that record), even where
    Arrow would read it the same: the gates do not rely on the reader's details."""
    values = mixed_into_clean(value, at)
    assert_agrees(values, parse_batch(values))
    assert spy.calls == 1


def test_agrees_on_everything_mixed() -> None:
    """All the hostile inputs shuffled together: one bad record must not change another's
    verdict, whatever it sits next to."""
    values = [*EDGE_CASES.values(), *corpus(), *fuzzed(FUZZ_SEEDS[0])[:3000]]
    values += list(clean_values()) * 2
    random.Random(5).shuffle(values)
    check_in_batches(values, (500, 2000, 5000), 5)


def test_the_differential_tests_compare_over_100k_records() -> None:
    """Each input counted once, though most are compared more than once (in several batch
    contexts, or surrounded by valid records)."""
    counts = {
        "synthetic": sum(len(synthetic(seed)[0]) for seed in SYNTHETIC_SEEDS),
        "corpus": len(corpus()),
        "edge cases": len(EDGE_CASES),
        "fuzzed": sum(len(fuzzed(seed)) for seed in FUZZ_SEEDS),
    }
    assert sum(counts.values()) >= 100_000, counts


# -- batch-level behaviour ----------------------------------------------------------------------


@pytest.fixture
def reader_for_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the Arrow reader even for a batch of one (normally parse_session is cheaper)."""
    monkeypatch.setattr(batch_reading, "MIN_READ_RECORDS", 1)


def test_empty_batch() -> None:
    batch = parse_batch([])
    assert batch.valid.shape == batch.timestamp_ms.shape == batch.current_lat.shape == (0,)
    assert len(batch.session_id) == 0
    assert isinstance(batch.status, pa.StringArray)
    assert not batch.rejections
    assert batch.has_position.shape == (0,)


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("reader_for_any_size")
@pytest.mark.parametrize(
    "value",
    [SEED_BYTES, dumps({"current_lat": ...}), None, b"{}", b"{", b"{}{}", SEED_BYTES * 2],
)
def test_batch_of_one_on_the_fast_path(value: bytes | None, spy: Spy) -> None:
    """Even a single value the reader refuses without naming a row (two objects) ends."""
    assert_agrees([value], parse_batch([value]))
    if value == SEED_BYTES:
        assert spy.calls == 0


def test_batch_of_one_valid_record() -> None:
    batch = parse_batch([SEED_BYTES])
    assert batch.valid.tolist() == [True]
    assert batch.session_id.to_pylist() == [SEED["session_id"]]
    assert batch.status.to_pylist() == ["en_route"]
    assert batch.timestamp_ms.tolist() == [1_752_928_496_789]
    assert (batch.start_lat[0], batch.end_lon[0]) == (40.7527, -73.9855)
    assert batch.has_position.tolist() == [True]
    assert not batch.rejections


def test_refused_records_have_no_values() -> None:
    values = [SEED_BYTES, b"nope", dumps({"current_lat": ..., "current_lon": ...}), None]
    values += clean_values()[:40]
    batch = parse_batch(values)
    assert batch.valid[:4].tolist() == [True, False, True, False]
    assert sorted(batch.rejections) == [1, 3]
    for index in (1, 3):
        assert batch.session_id[index].as_py() is None
        assert batch.status[index].as_py() is None
        assert batch.timestamp_ms[index] == 0
        assert all(math.isnan(getattr(batch, name)[index]) for name in COORDINATE_FIELDS)
    assert batch.has_position[:4].tolist() == [True, False, False, False]
    assert math.isnan(batch.current_lat[2])


def test_arrays_are_read_only() -> None:
    batch = parse_batch(list(clean_values()[:30]))
    with pytest.raises(ValueError, match="read-only"):
        batch.current_lat[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        batch.valid[0] = False


def test_order_is_preserved() -> None:
    values: list[bytes | None] = [*clean_values()[:300], *list(EDGE_CASES.values())[:80]]
    random.Random(3).shuffle(values)
    forward = parse_batch(values)
    backward = parse_batch(values[::-1])
    assert forward.valid.tolist() == backward.valid.tolist()[::-1]
    assert forward.session_id.to_pylist() == backward.session_id.to_pylist()[::-1]
    assert forward.timestamp_ms.tolist() == backward.timestamp_ms.tolist()[::-1]
    assert_agrees(values, forward)


@pytest.mark.parametrize(
    "bad",
    [
        dumps(raw={"start_lat": '"40.1"'}),  # a string where a number belongs
        dumps(raw={"status": "5"}),  # a number where a string belongs
        dumps(tail=',"status":"arrived"'),  # a duplicate schema key
        repr(SEED).encode(),  # a syntax error
        dumps(raw={"end_lat": "1e400"}),  # beyond a double
    ],
    ids=["type", "number for string", "duplicate key", "syntax", "1e400"],
)
def test_a_part_the_reader_refuses_costs_only_the_bad_record(bad: bytes, spy: Spy) -> None:
    """Arrow refuses the whole part for one bad record: the batch is read again without it,
    and only that record takes the slow path."""
    values = mixed_into_clean(bad, at=500, count=1000)
    assert_agrees(values, parse_batch(values))
    assert spy.calls == 1


def test_two_objects_in_one_value_fall_back_by_halves(spy: Spy) -> None:
    """Two objects in one value make one row too many and Arrow names no row: the part is
    halved until the reader agrees with the values one to one."""
    values = mixed_into_clean(SEED_BYTES + SEED_BYTES, at=500, count=1000)
    assert_agrees(values, parse_batch(values))
    assert spy.calls < 2 * batch_parsing.MIN_READ_RECORDS


def test_a_batch_of_bad_types_goes_the_slow_way_after_a_few_refusals(spy: Spy) -> None:
    """A producer that sends the wrong type everywhere: after MAX_FAILED_READS refusals the
    rest of the batch is parsed one by one, as its rejections need anyway."""
    values = [dumps(raw={"start_lat": '"1"'})] * 300 + list(clean_values()[:300])
    random.Random(1).shuffle(values)
    assert_agrees(values, parse_batch(values))


def test_a_batch_without_a_readable_value() -> None:
    values = [None, b"", b"[]", b"x" * 10, SEED_BYTES + b" "] * 20
    assert_agrees(values, parse_batch(values))


def test_the_reader_failing_entirely_leaves_everything_to_parse_session(
    monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise pa.ArrowInvalid("no reader today")

    monkeypatch.setattr(pj, "read_json", refuse)
    values = [*clean_values()[:200], *list(EDGE_CASES.values())[:50]]
    assert_agrees(values, parse_batch(values))
    assert spy.calls == len(values)


def test_a_failing_fast_path_falls_back_to_parse_session(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, spy: Spy
) -> None:
    def broken(columns: object) -> None:
        raise IndexError("a bug")

    monkeypatch.setattr(batch_parsing, "_check", broken)
    values = [*clean_values()[:100], *list(EDGE_CASES.values())[:50]]
    assert_agrees(values, parse_batch(values))
    assert spy.calls == len(values)
    assert "fast path failed on a batch of 150 records" in caplog.text
    caplog.clear()


def test_large_parts_are_read_in_halves(monkeypatch: pytest.MonkeyPatch, spy: Spy) -> None:
    monkeypatch.setattr(batch_reading, "MAX_READ_BYTES", 20_000)
    values = list(clean_values()[:400])
    assert_agrees(values, parse_batch(values))
    assert spy.calls == 0


def test_values_of_other_types() -> None:
    """Anything else than bytes goes to parse_session as it is (a bytearray parses)."""
    values: list[Any] = [bytearray(SEED_BYTES), memoryview(b""), *clean_values()[:30]]
    batch = parse_batch(values)
    assert batch.valid[0]
    assert_agrees([SEED_BYTES, b"", *clean_values()[:30]], batch)


# -- the fast path's rules against the schema's -------------------------------------------------


def test_the_fast_status_rule_is_the_schemas() -> None:
    assert f"^{STATUS_PATTERN.pattern}$" == batch_checks._STATUS_RE


@pytest.mark.parametrize("field", COORDINATE_FIELDS)
def test_the_fast_coordinate_limits_are_the_schemas(field: str) -> None:
    limit = batch_checks._LIMITS[field]
    for value, valid in ((limit, True), (-limit, True), (math.nextafter(limit, math.inf), False)):
        result = parse_session(dumps({field: value}))
        assert isinstance(result, SessionMessage) is valid, (field, value)


def test_the_bracket_gate_is_below_the_json_parsers_depth_limit() -> None:
    """Arrow reads values with at most MAX_BRACKETS brackets, whatever their nesting: pydantic
    must accept it. Its limit today is about 200 levels."""
    accepted = (nested(MAX_BRACKETS - 1), nested(199), nested_objects(199))
    for inner in accepted:
        assert isinstance(parse_session(dumps(tail=f',"x":{inner}')), SessionMessage)
    for inner in (nested(201), nested_objects(200)):
        assert isinstance(parse_session(dumps(tail=f',"x":{inner}')), Rejection)


def test_the_digit_gate_is_below_the_json_parsers_number_limit() -> None:
    """Arrow reads values without a run of more than MAX_DIGITS digits: pydantic must accept
    such numbers. Its limit is 4,300 digits before the decimal point."""
    assert isinstance(parse_session(dumps(tail=f',"x":{"7" * MAX_DIGITS}')), SessionMessage)
    assert isinstance(parse_session(dumps(tail=f',"x":{"7" * 4300}')), SessionMessage)
    assert isinstance(parse_session(dumps(tail=f',"x":{"7" * 4301}')), Rejection)


def test_the_timestamp_range_is_the_schemas() -> None:
    for text, valid in (
        ("1999-12-31T23:59:59.999Z", False),
        ("2000-01-01T00:00:00.000Z", True),
        ("2099-12-31T23:59:59.999Z", True),
        ("2100-01-01T00:00:00.000Z", False),
    ):
        assert isinstance(parse_session(dumps({"timestamp": text})), SessionMessage) is valid
        assert bool(parse_batch([dumps({"timestamp": text})] * 30).valid.all()) is valid
