"""Malformed records: one of each :class:`~jupiter_local.synthetic.model.MalformedKind`,
built around a fabricated session id that no valid record uses."""

from __future__ import annotations

import json
import random

from jupiter_local.synthetic.model import (
    _LAT_MAX,
    _LAT_MIN,
    _LON_MAX,
    _LON_MIN,
    REQUIRED_FIELDS,
    GeneratorConfig,
    MalformedKind,
    SyntheticRecord,
    _SecondPrefixes,
    _start_ms,
    _uuid4,
)


def _malformed(
    kind: MalformedKind,
    rng: random.Random,
    config: GeneratorConfig,
    taken: set[str],
    secs: _SecondPrefixes,
) -> SyntheticRecord:
    """Build one malformed record of ``kind`` around a fabricated (unused) session id."""
    session_id = _uuid4(rng)
    while session_id in taken:
        session_id = _uuid4(rng)
    status = rng.choice(("started", "en_route", "arrived"))
    ts_ms = _start_ms(config) + rng.randrange(max(1, config.pings_per_session + 3)) * (
        config.ping_interval_ms
    )
    template: dict[str, object] = {
        "session_id": session_id,
        "vehicle_id": _uuid4(rng),
        "order_id": _uuid4(rng),
        "status": status,
        "timestamp": secs.format(ts_ms),
        "start_lat": round(rng.uniform(_LAT_MIN, _LAT_MAX), 6),
        "start_lon": round(rng.uniform(_LON_MIN, _LON_MAX), 6),
        "end_lat": round(rng.uniform(_LAT_MIN, _LAT_MAX), 6),
        "end_lon": round(rng.uniform(_LON_MIN, _LON_MAX), 6),
        "current_lat": round(rng.uniform(_LAT_MIN, _LAT_MAX), 6),
        "current_lon": round(rng.uniform(_LON_MIN, _LON_MAX), 6),
    }
    key: bytes | None = session_id.encode("ascii")

    def dump() -> bytes:
        return json.dumps(template, separators=(",", ":")).encode("utf-8")

    if kind is MalformedKind.NOT_JSON:
        key = None
        variant = rng.randrange(3)
        if variant == 0:  # truncated object: any strict prefix of an object is invalid JSON
            full = dump()
            value = full[: rng.randrange(1, len(full) // 2)]
        elif variant == 1:
            value = f"session_id={session_id};status={status};ts={template['timestamp']}".encode()
        else:
            value = repr(template).encode("utf-8")  # single-quoted Python dict
    elif kind is MalformedKind.MISSING_FIELD:
        del template[rng.choice(REQUIRED_FIELDS)]
        value = dump()
    elif kind is MalformedKind.BAD_UUID:
        field = rng.choice(("session_id", "vehicle_id", "order_id"))
        good = str(template[field])
        template[field] = rng.choice(
            ("not-a-uuid", good[:-4], good[:-1] + "g", good.replace("-", "_"), "")
        )
        value = dump()
    elif kind is MalformedKind.OUT_OF_RANGE_COORDINATE:
        field = rng.choice(
            ("start_lat", "start_lon", "end_lat", "end_lon", "current_lat", "current_lon")
        )
        limit = 90.0 if field.endswith("_lat") else 180.0
        sign = rng.choice((1.0, -1.0))
        template[field] = round(sign * (limit + rng.uniform(0.5, limit)), 6)
        value = dump()
    elif kind is MalformedKind.BAD_TIMESTAMP:
        good = str(template["timestamp"])
        template["timestamp"] = rng.choice(
            (
                good[:-1],  # naive: no timezone
                "2025-02-30T12:00:00.000Z",
                "2025-07-19T25:61:00.000Z",
                "not-a-timestamp",
                "19/07/2025 12:34:56",
            )
        )
        value = dump()
    else:  # NON_UTF8: latin-1 / stray 0xFF bytes inside the status string
        key = None
        raw = dump()
        needle = f'"status":"{status}'.encode("ascii")
        value = raw.replace(needle, needle + rng.choice((b"\xff", b"\xe9", b"\xc3\x28")), 1)
    return SyntheticRecord(key, value, "malformed", kind, None)
