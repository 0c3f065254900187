"""The stream: every session planned up front from the seed, its messages encoded in lifecycle
order, emitted ordered by (timestamp, session) with the faults (duplicates, reordering,
malformed records) mixed in from their own seeded random streams."""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from jupiter_local.synthetic.malformed import _malformed
from jupiter_local.synthetic.model import (
    _DUP_MAX_DELAY,
    _LAT_MAX,
    _LAT_MIN,
    _LON_MAX,
    _LON_MIN,
    _MAX_CONCURRENT,
    _NOISE,
    Expectations,
    GeneratedStream,
    GeneratorConfig,
    MalformedKind,
    SyntheticRecord,
    _SecondPrefixes,
    _start_ms,
    _uuid4,
)

_MALFORMED_CYCLE: Final[tuple[MalformedKind, ...]] = tuple(MalformedKind)


@dataclass(frozen=True, slots=True)
class _Session:
    """Everything drawn for one session, plus precomputed message fragments."""

    index: int
    session_id: str
    key: bytes
    start_ms: int
    planned_pings: int
    en_route: int
    cancelled: bool
    n_messages: int
    prefix: str  # '{"session_id":"..","vehicle_id":"..","order_id":"..","status":"'
    tail: str  # ',"start_lat":..,"start_lon":..,"end_lat":..,"end_lon":..'
    started_tail: str  # tail + current = start + "}"
    arrived_tail: str  # tail + current = end + "}"
    bare_tail: str  # tail + "}"
    lat0: float  # start_lat - _NOISE / 2 (noise is added as random() * _NOISE)
    lon0: float
    step_lat: float  # (end - start) / (planned_pings + 1)
    step_lon: float


def _plan(config: GeneratorConfig) -> list[_Session]:
    """Draw every per-session decision (ids, route, sizes, start time) up front."""
    rng = random.Random(f"{config.seed}:plan")
    interval = config.ping_interval_ms
    mean = config.pings_per_session
    base_ms = _start_ms(config)
    span_ms = max(1, (mean + 3) * interval * math.ceil(max(1, config.sessions) / _MAX_CONCURRENT))
    seen: set[str] = set()
    cursor = base_ms
    sessions: list[_Session] = []
    for index in range(config.sessions):
        session_id = _uuid4(rng)
        while session_id in seen:  # astronomically unlikely, but keep ids distinct
            session_id = _uuid4(rng)
        seen.add(session_id)
        vehicle_id = _uuid4(rng)
        order_id = _uuid4(rng)
        slat = round(rng.uniform(_LAT_MIN, _LAT_MAX), 6)
        slon = round(rng.uniform(_LON_MIN, _LON_MAX), 6)
        elat = round(rng.uniform(_LAT_MIN, _LAT_MAX), 6)
        elon = round(rng.uniform(_LON_MIN, _LON_MAX), 6)
        planned = max(1, round(rng.gauss(mean, mean / 4))) if mean > 0 else 0
        cancelled = rng.random() < config.cancel_ratio
        en_route = rng.randint(0, max(0, (planned - 1) // 2)) if cancelled else planned
        offset = rng.randrange(span_ms)
        start = base_ms + offset if config.interleave else cursor
        tail = (
            f',"start_lat":{slat:.6f},"start_lon":{slon:.6f}'
            f',"end_lat":{elat:.6f},"end_lon":{elon:.6f}'
        )
        session = _Session(
            index=index,
            session_id=session_id,
            key=session_id.encode("ascii"),
            start_ms=start,
            planned_pings=planned,
            en_route=en_route,
            cancelled=cancelled,
            n_messages=en_route + (2 if cancelled else 3),
            prefix=(
                f'{{"session_id":"{session_id}","vehicle_id":"{vehicle_id}",'
                f'"order_id":"{order_id}","status":"'
            ),
            tail=tail,
            started_tail=f'{tail},"current_lat":{slat:.6f},"current_lon":{slon:.6f}}}',
            arrived_tail=f'{tail},"current_lat":{elat:.6f},"current_lon":{elon:.6f}}}',
            bare_tail=tail + "}",
            lat0=slat - _NOISE / 2,
            lon0=slon - _NOISE / 2,
            step_lat=(elat - slat) / (planned + 1),
            step_lon=(elon - slon) / (planned + 1),
        )
        cursor = start + session.n_messages * interval
        sessions.append(session)
    return sessions


def _session_values(
    s: _Session, interval: int, noise: Callable[[], float], secs: _SecondPrefixes
) -> list[bytes]:
    """Encode every message of session ``s`` in lifecycle order (index = message index)."""
    t0 = s.start_ms
    prefix = s.prefix
    fmt = secs.format
    values = [f'{prefix}started","timestamp":"{fmt(t0)}"{s.started_tail}'.encode()]
    head = f'{prefix}en_route","timestamp":"'
    tail = f'Z"{s.tail},"current_lat":'
    lat0, lon0, step_lat, step_lon = s.lat0, s.lon0, s.step_lat, s.step_lon
    n = s.en_route
    values += [
        f"{head}{secs[t // 1000]}.{t % 1000:03d}{tail}"
        f'{lat0 + step_lat * j + noise() * _NOISE:.6f},"current_lon":'
        f"{lon0 + step_lon * j + noise() * _NOISE:.6f}}}".encode()
        for j, t in zip(
            range(1, n + 1), range(t0 + interval, t0 + (n + 1) * interval, interval), strict=True
        )
    ]
    t = t0 + (n + 1) * interval
    if s.cancelled:
        values.append(f'{prefix}cancelled","timestamp":"{fmt(t)}"{s.bare_tail}'.encode())
    else:
        values.append(f'{prefix}arrived","timestamp":"{fmt(t)}"{s.arrived_tail}'.encode())
        t += interval
        values.append(f'{prefix}completed","timestamp":"{fmt(t)}"{s.bare_tail}'.encode())
    return values


def _exhausted() -> bytes:
    raise AssertionError("session is not active")  # pragma: no cover - internal invariant


def iter_records(config: GeneratorConfig) -> Iterator[SyntheticRecord]:
    """Stream the records of ``config`` in emission order (same as ``generate().records``).

    Valid messages are emitted ordered by ``(timestamp, session)`` (before faults). Memory is
    proportional to the sessions active at a time, not to the total message count.
    """
    sessions = _plan(config)
    n_sessions = len(sessions)
    interval = config.ping_interval_ms
    secs = _SecondPrefixes()
    noise = random.Random(f"{config.seed}:noise").random
    reorder_rng = random.Random(f"{config.seed}:reorder")
    dup_rng = random.Random(f"{config.seed}:duplicate")
    mal_rng = random.Random(f"{config.seed}:malformed")
    reorder_ratio = config.reorder_ratio
    dup_ratio = config.duplicate_ratio
    record_cls = SyntheticRecord

    total_valid = sum(s.n_messages for s in sessions)
    mal_positions = sorted(
        mal_rng.randrange(total_valid + 1) for _ in range(config.malformed_count)
    )
    taken = {s.session_id for s in sessions} if mal_positions else set()
    mal_i = 0
    next_mal = mal_positions[0] if mal_positions else -1  # -1: never equals `generated`
    generated = 0

    held: dict[int, SyntheticRecord] = {}  # session index -> record waiting for its successor
    pending: dict[int, list[SyntheticRecord]] = {}  # emitted-count -> duplicates due then
    emitted = 0
    faults = bool(reorder_ratio or dup_ratio)

    # Events are produced window by window: every session whose start falls before the end
    # of the window is "activated" (all its values encoded at once), the window's events are
    # keyed as (timestamp - base) * n_sessions + session_index and sorted, then emitted.
    by_start = sorted(sessions, key=lambda s: (s.start_ms, s.index))
    base = by_start[0].start_ms if by_start else 0  # keys are relative: smaller ints sort faster
    last_ts = [s.start_ms - base + (s.n_messages - 1) * interval for s in sessions]
    keys_b = [s.key for s in sessions]
    ids = [s.session_id for s in sessions]
    # While a session is active: returns its next encoded value (values are consumed in order).
    next_of: list[Callable[[], bytes]] = [_exhausted] * n_sessions
    window = interval * 64
    stride = interval * n_sessions
    ptr = 0
    active: list[_Session] = []
    w0 = by_start[0].start_ms if by_start else 0
    while ptr < n_sessions or active:
        if not active:
            w0 = max(w0, by_start[ptr].start_ms)  # skip idle gaps
        w1 = w0 + window
        while ptr < n_sessions and by_start[ptr].start_ms < w1:
            s = by_start[ptr]
            if len(secs) > 65536:
                secs.clear()
            next_of[s.index] = iter(_session_values(s, interval, noise, secs)).__next__
            active.append(s)
            ptr += 1
        keys: list[int] = []
        still_active: list[_Session] = []
        finished: list[int] = []
        for s in active:
            start = s.start_ms
            j_lo = max(0, -((start - w0) // interval))
            j_hi = min(s.n_messages, -((start - w1) // interval))
            if j_lo < j_hi:
                first = (start - base + j_lo * interval) * n_sessions + s.index
                keys.extend(range(first, first + (j_hi - j_lo) * stride, stride))
            if j_hi < s.n_messages:
                still_active.append(s)
            else:
                finished.append(s.index)
        keys.sort()

        for key in keys:
            index = key % n_sessions
            while generated == next_mal:
                yield _malformed(
                    _MALFORMED_CYCLE[mal_i % len(_MALFORMED_CYCLE)], mal_rng, config, taken, secs
                )
                mal_i += 1
                next_mal = mal_positions[mal_i] if mal_i < len(mal_positions) else -1
            generated += 1
            record = record_cls(keys_b[index], next_of[index](), "valid", None, ids[index])
            if not faults:
                yield record
                continue

            out: tuple[SyntheticRecord, ...] = (record,)
            if reorder_ratio:
                # Reorder fault: hold a record back until the next record of the same
                # session, then emit that successor first.
                before = held.pop(index, None) if held else None
                if before is not None:
                    out = (record, before)
                elif key // n_sessions < last_ts[index] and reorder_rng.random() < reorder_ratio:
                    held[index] = record
                    continue
            for r in out:
                yield r
                if dup_ratio:
                    emitted += 1
                    if dup_rng.random() < dup_ratio:
                        due = emitted + dup_rng.randint(0, _DUP_MAX_DELAY)
                        dup = record_cls(r.key, r.value, "duplicate", None, r.session_id)
                        pending.setdefault(due, []).append(dup)
                    if pending:
                        due_now = pending.pop(emitted, None)
                        if due_now:
                            yield from due_now

        for index in finished:
            next_of[index] = _exhausted  # release the encoded values of completed sessions
        active = still_active
        w0 = w1

    while mal_i < len(mal_positions):
        yield _malformed(
            _MALFORMED_CYCLE[mal_i % len(_MALFORMED_CYCLE)], mal_rng, config, taken, secs
        )
        mal_i += 1
    for due in sorted(pending):
        yield from pending[due]


def generate(config: GeneratorConfig) -> GeneratedStream:
    """Materialise ``iter_records(config)`` and compute its :class:`Expectations`."""
    # The records hold no reference cycles; pausing the cyclic GC while allocating millions of
    # small objects avoids repeated full-heap scans (roughly 20-30% of the run time).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        records = tuple(iter_records(config))
    finally:
        if gc_was_enabled:
            gc.enable()
    messages = gps = started = completed = cancelled = malformed = duplicates = 0
    session_ids: set[str | None] = set()
    for r in records:
        kind = r.kind
        if kind == "valid":
            messages += 1
            session_ids.add(r.session_id)
            value = r.value
            if b'"current_lat"' in value:
                gps += 1
                if b'"status":"started"' in value:
                    started += 1
            elif b'"status":"completed"' in value:
                completed += 1
            elif b'"status":"cancelled"' in value:
                cancelled += 1
        elif kind == "duplicate":
            duplicates += 1
        else:
            malformed += 1
    expected = Expectations(
        messages=messages,
        gps_pings=gps,
        sessions=len(session_ids),
        sessions_started=started,
        malformed=malformed,
        duplicates=duplicates,
        sessions_completed=completed,
        sessions_cancelled=cancelled,
    )
    return GeneratedStream(records=records, expected=expected)
