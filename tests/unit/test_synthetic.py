"""Unit tests for jupiter_local.synthetic (pure, no Kafka)."""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from jupiter_local import synthetic
from jupiter_local.synthetic import (
    GPS_STATUSES,
    REQUIRED_FIELDS,
    GeneratedStream,
    GeneratorConfig,
    MalformedKind,
    SyntheticRecord,
    generate,
    iter_records,
    restamp,
    stamp_when_pulled,
)

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
COORD_FIELDS = ("start_lat", "start_lon", "end_lat", "end_lon", "current_lat", "current_lon")

FAULTY = GeneratorConfig(
    sessions=60,
    pings_per_session=8,
    cancel_ratio=0.2,
    seed=42,
    duplicate_ratio=0.05,
    reorder_ratio=0.05,
    malformed_count=18,
)


@pytest.fixture(scope="module")
def faulty() -> GeneratedStream:
    return generate(FAULTY)


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def decoded(record: SyntheticRecord) -> dict[str, Any]:
    obj = json.loads(record.value)
    assert isinstance(obj, dict)
    return obj


def by_session(stream: GeneratedStream) -> dict[str, list[dict[str, Any]]]:
    """Valid messages per session, in emission order."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for msg in stream.valid_messages():
        out[str(msg["session_id"])].append(msg)
    return out


# --- determinism -------------------------------------------------------------------------


def test_same_config_is_byte_identical() -> None:
    a = generate(FAULTY)
    b = generate(FAULTY)
    assert a == b
    assert [(r.key, r.value) for r in a.records] == [(r.key, r.value) for r in b.records]


@pytest.mark.parametrize("interleave", [True, False])
def test_iter_records_matches_generate(interleave: bool) -> None:
    config = GeneratorConfig(
        sessions=30,
        pings_per_session=5,
        seed=3,
        interleave=interleave,
        duplicate_ratio=0.1,
        reorder_ratio=0.1,
        malformed_count=7,
    )
    assert tuple(iter_records(config)) == generate(config).records


def test_different_seed_differs() -> None:
    a = generate(GeneratorConfig(sessions=5, seed=1))
    b = generate(GeneratorConfig(sessions=5, seed=2))
    assert [r.value for r in a.records] != [r.value for r in b.records]
    assert {r.session_id for r in a.records}.isdisjoint({r.session_id for r in b.records})


def test_faults_do_not_change_the_valid_messages() -> None:
    clean = generate(GeneratorConfig(sessions=40, pings_per_session=6, seed=9))
    noisy = generate(
        GeneratorConfig(
            sessions=40,
            pings_per_session=6,
            seed=9,
            duplicate_ratio=0.2,
            reorder_ratio=0.2,
            malformed_count=12,
        )
    )
    clean_values = sorted(r.value for r in clean.records if r.kind == "valid")
    noisy_values = sorted(r.value for r in noisy.records if r.kind == "valid")
    assert clean_values == noisy_values


# --- expectations ------------------------------------------------------------------------


def test_expectations_match_independent_recount(faulty: GeneratedStream) -> None:
    distinct: dict[tuple[str, str], dict[str, Any]] = {}
    malformed = duplicates = 0
    for record in faulty.records:
        if record.kind == "malformed":
            malformed += 1
            continue
        if record.kind == "duplicate":
            duplicates += 1
        msg = decoded(record)
        distinct.setdefault((msg["session_id"], msg["timestamp"]), msg)
    msgs = list(distinct.values())
    exp = faulty.expected
    assert exp.messages == len(msgs) == len(faulty.valid_messages())
    assert exp.gps_pings == sum("current_lat" in m and "current_lon" in m for m in msgs)
    assert exp.sessions == len({m["session_id"] for m in msgs}) == FAULTY.sessions
    assert exp.sessions_started == len({m["session_id"] for m in msgs if m["status"] == "started"})
    assert exp.sessions_completed == sum(m["status"] == "completed" for m in msgs)
    assert exp.sessions_cancelled == sum(m["status"] == "cancelled" for m in msgs)
    assert exp.sessions_completed + exp.sessions_cancelled == exp.sessions
    assert exp.malformed == malformed == FAULTY.malformed_count
    assert exp.duplicates == duplicates > 0
    assert json.loads(json.dumps(exp.as_dict())) == exp.as_dict()


def test_valid_messages_never_collide(faulty: GeneratedStream) -> None:
    keys = [(m["session_id"], m["timestamp"]) for m in faulty.valid_messages()]
    assert len(keys) == len(set(keys))


# --- message shape -----------------------------------------------------------------------


def test_valid_message_shape(faulty: GeneratedStream) -> None:
    for record in faulty.records:
        if record.kind != "valid":
            continue
        text = record.value.decode("utf-8")
        assert " " not in text
        msg = decoded(record)
        assert record.key == msg["session_id"].encode("ascii")
        assert record.session_id == msg["session_id"]
        assert record.malformed_kind is None
        assert set(REQUIRED_FIELDS) <= msg.keys()
        assert list(msg)[: len(REQUIRED_FIELDS)] == list(REQUIRED_FIELDS)
        for field in ("session_id", "vehicle_id", "order_id"):
            parsed = uuid.UUID(msg[field])
            assert parsed.version == 4
            assert str(parsed) == msg[field]
        assert TS_RE.match(msg["timestamp"])
        assert parse_ts(msg["timestamp"]).tzinfo is not None
        has_current = "current_lat" in msg
        assert has_current == ("current_lon" in msg)
        assert has_current == (msg["status"] in GPS_STATUSES)
        for field in COORD_FIELDS:
            if field in msg:
                value = msg[field]
                assert isinstance(value, float)
                assert value == round(value, 6)
                if field.endswith("_lat"):
                    assert 40.69 < value < 40.81
                else:
                    assert -74.03 < value < -73.92


def test_vehicle_and_order_ids_are_per_session(faulty: GeneratedStream) -> None:
    for msgs in by_session(faulty).values():
        assert len({(m["vehicle_id"], m["order_id"]) for m in msgs}) == 1
        routes = {(m["start_lat"], m["start_lon"], m["end_lat"], m["end_lon"]) for m in msgs}
        assert len(routes) == 1


# --- lifecycle ---------------------------------------------------------------------------


def test_lifecycle_per_session() -> None:
    config = GeneratorConfig(sessions=80, pings_per_session=6, cancel_ratio=0.3, seed=5)
    stream = generate(config)
    step = timedelta(milliseconds=config.ping_interval_ms)
    cancelled = completed = 0
    for msgs in by_session(stream).values():
        # Without reorder faults emission order == timestamp order.
        times = [parse_ts(m["timestamp"]) for m in msgs]
        assert all(b - a == step for a, b in pairwise(times))
        statuses = [m["status"] for m in msgs]
        first, last = msgs[0], msgs[-1]
        assert first["status"] == "started"
        assert (first["current_lat"], first["current_lon"]) == (
            first["start_lat"],
            first["start_lon"],
        )
        assert "current_lat" not in last
        if last["status"] == "cancelled":
            cancelled += 1
            assert set(statuses[1:-1]) <= {"en_route"}
        else:
            completed += 1
            assert statuses[-2:] == ["arrived", "completed"]
            assert set(statuses[1:-2]) <= {"en_route"}
            arrived = msgs[-2]
            assert (arrived["current_lat"], arrived["current_lon"]) == (
                arrived["end_lat"],
                arrived["end_lon"],
            )
        for m in msgs:
            if m["status"] == "en_route":
                assert "current_lat" in m and "current_lon" in m
    assert cancelled > 0 and completed > 0
    assert stream.expected.sessions_cancelled == cancelled


def test_first_message_by_timestamp_is_started_even_with_reorder(faulty: GeneratedStream) -> None:
    for msgs in by_session(faulty).values():
        ordered = sorted(msgs, key=lambda m: parse_ts(m["timestamp"]))
        assert ordered[0]["status"] == "started"
        assert ordered[-1]["status"] in {"completed", "cancelled"}


def test_en_route_pings_follow_the_path() -> None:
    stream = generate(GeneratorConfig(sessions=20, pings_per_session=10, cancel_ratio=0.0, seed=8))
    for msgs in by_session(stream).values():
        for m in msgs:
            lo_lat, hi_lat = sorted((m["start_lat"], m["end_lat"]))
            lo_lon, hi_lon = sorted((m["start_lon"], m["end_lon"]))
            if m["status"] == "en_route":
                assert lo_lat - 0.0002 <= m["current_lat"] <= hi_lat + 0.0002
                assert lo_lon - 0.0002 <= m["current_lon"] <= hi_lon + 0.0002


def test_cancelled_sessions_have_fewer_pings() -> None:
    base = {"sessions": 200, "pings_per_session": 12, "seed": 11}
    done = generate(GeneratorConfig(cancel_ratio=0.0, **base))  # type: ignore[arg-type]
    gone = generate(GeneratorConfig(cancel_ratio=1.0, **base))  # type: ignore[arg-type]
    assert done.expected.sessions_cancelled == 0
    assert done.expected.sessions_completed == 200
    assert gone.expected.sessions_cancelled == 200
    assert gone.expected.messages < done.expected.messages
    pings = [sum(m["status"] == "en_route" for m in ms) for ms in by_session(done).values()]
    assert 9 < sum(pings) / len(pings) < 15  # mean is pings_per_session
    assert len(set(pings)) > 1  # drawn per session, not constant


@pytest.mark.parametrize("interleave", [True, False])
def test_interleave(interleave: bool) -> None:
    stream = generate(GeneratorConfig(sessions=20, pings_per_session=5, interleave=interleave))
    order = [r.session_id for r in stream.records]
    blocks = [sid for i, sid in enumerate(order) if i == 0 or order[i - 1] != sid]
    if interleave:
        assert len(blocks) > 20  # sessions overlap in the emission order
        times = [parse_ts(str(m["timestamp"])) for m in stream.valid_messages()]
        assert times == sorted(times)
    else:
        assert len(blocks) == 20  # one contiguous block per session


# --- faults ------------------------------------------------------------------------------


def test_duplicates_are_byte_identical_to_an_earlier_record(faulty: GeneratedStream) -> None:
    seen: dict[bytes, bytes | None] = {}
    dups = 0
    for record in faulty.records:
        if record.kind == "valid":
            assert record.value not in seen
            seen[record.value] = record.key
        elif record.kind == "duplicate":
            dups += 1
            assert record.value in seen
            assert seen[record.value] == record.key
            assert record.session_id is not None
    assert dups == faulty.expected.duplicates > 0


def _timestamp_decreases(stream: GeneratedStream) -> int:
    count = 0
    for msgs in by_session(stream).values():
        times = [parse_ts(str(m["timestamp"])) for m in msgs]
        count += sum(b < a for a, b in pairwise(times))
    return count


def test_reorder_makes_timestamps_go_backwards(faulty: GeneratedStream) -> None:
    assert _timestamp_decreases(faulty) > 0
    # The same decreases must be visible per Kafka key (i.e. per partition).
    per_key: dict[bytes | None, list[datetime]] = defaultdict(list)
    for record in faulty.records:
        if record.kind == "valid":
            per_key[record.key].append(parse_ts(decoded(record)["timestamp"]))
    assert any(any(b < a for a, b in pairwise(t)) for t in per_key.values())


def test_no_reorder_means_monotonic_sessions() -> None:
    stream = generate(GeneratorConfig(sessions=30, pings_per_session=5, duplicate_ratio=0.2))
    assert _timestamp_decreases(stream) == 0


def _assert_malformed(kind: MalformedKind, value: bytes) -> None:
    if kind is MalformedKind.NON_UTF8:
        with pytest.raises(UnicodeDecodeError):
            value.decode("utf-8")
        return
    text = value.decode("utf-8")
    if kind is MalformedKind.NOT_JSON:
        with pytest.raises(ValueError):
            json.loads(text)
        return
    msg = json.loads(text)
    assert isinstance(msg, dict)
    if kind is MalformedKind.MISSING_FIELD:
        assert not set(REQUIRED_FIELDS) <= msg.keys()
    elif kind is MalformedKind.BAD_UUID:
        bad = 0
        for field in ("session_id", "vehicle_id", "order_id"):
            try:
                uuid.UUID(msg[field])
            except ValueError:
                bad += 1
        assert bad == 1
    elif kind is MalformedKind.OUT_OF_RANGE_COORDINATE:
        lats = [msg[f] for f in COORD_FIELDS if f.endswith("_lat") and f in msg]
        lons = [msg[f] for f in COORD_FIELDS if f.endswith("_lon") and f in msg]
        assert any(abs(v) > 90 for v in lats) or any(abs(v) > 180 for v in lons)
    elif kind is MalformedKind.BAD_TIMESTAMP:
        try:
            parsed = datetime.fromisoformat(msg["timestamp"].replace("Z", "+00:00"))
        except ValueError:
            return
        assert parsed.tzinfo is None
    else:  # pragma: no cover
        raise AssertionError(kind)


def test_every_malformed_kind_is_present_and_malformed(faulty: GeneratedStream) -> None:
    malformed = [r for r in faulty.records if r.kind == "malformed"]
    kinds = [r.malformed_kind for r in malformed]
    cycle = list(MalformedKind)
    assert kinds == [cycle[i % len(cycle)] for i in range(FAULTY.malformed_count)]
    valid_ids = {r.session_id for r in faulty.records if r.kind == "valid"}
    for record in malformed:
        assert record.malformed_kind is not None
        assert record.session_id is None
        _assert_malformed(record.malformed_kind, record.value)
        if record.key is not None:
            assert record.key.decode("ascii") not in valid_ids
    # Mixed in, not all appended at the end.
    positions = [i for i, r in enumerate(faulty.records) if r.kind == "malformed"]
    assert positions[0] < len(faulty.records) - FAULTY.malformed_count


def test_the_malformed_cycle_follows_its_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator cycles through however many malformed kinds there are (it once hard-coded
    six): with a cycle of four, the kinds repeat every four records, before and after the last
    valid record."""
    cycle = tuple(MalformedKind)[:4]
    monkeypatch.setattr(synthetic.stream, "_MALFORMED_CYCLE", cycle)
    config = GeneratorConfig(sessions=5, pings_per_session=3, seed=3, malformed_count=11)
    kinds = [r.malformed_kind for r in iter_records(config) if r.kind == "malformed"]
    assert kinds == [cycle[i % 4] for i in range(11)]


def test_many_malformed_variants_are_all_malformed() -> None:
    stream = generate(GeneratorConfig(sessions=3, pings_per_session=2, malformed_count=600))
    malformed = [r for r in stream.records if r.kind == "malformed"]
    assert len(malformed) == 600
    for record in malformed:
        assert record.malformed_kind is not None
        _assert_malformed(record.malformed_kind, record.value)


# --- config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sessions": -1},
        {"pings_per_session": -1},
        {"ping_interval_ms": 0},
        {"malformed_count": -1},
        {"cancel_ratio": 1.5},
        {"duplicate_ratio": -0.1},
        {"reorder_ratio": 2.0},
        {"start_time": datetime(2025, 7, 19, 12, 0)},  # noqa: DTZ001 - naive on purpose
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GeneratorConfig(**kwargs)


def test_start_time_and_interval_are_honoured() -> None:
    start = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    stream = generate(
        GeneratorConfig(sessions=4, pings_per_session=3, start_time=start, ping_interval_ms=250)
    )
    times = [parse_ts(str(m["timestamp"])) for m in stream.valid_messages()]
    assert min(times) >= start
    for msgs in by_session(stream).values():
        ts = [parse_ts(m["timestamp"]) for m in msgs]
        assert all(b - a == timedelta(milliseconds=250) for a, b in pairwise(ts))


def test_empty_config() -> None:
    stream = generate(GeneratorConfig(sessions=0, malformed_count=2))
    assert stream.expected.messages == 0
    assert stream.expected.malformed == 2
    assert [r.kind for r in stream.records] == ["malformed", "malformed"]


def test_restamp_changes_only_the_timestamp() -> None:
    stream = generate(GeneratorConfig(sessions=3, pings_per_session=2, seed=5))
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    for record in stream.records:
        stamped = restamp(record, int(moment.timestamp() * 1000))
        body, before = decoded(stamped), decoded(record)
        assert body.pop("timestamp") == "2026-01-02T03:04:05.678Z"
        before.pop("timestamp")
        assert body == before
        assert list(decoded(stamped)) == list(decoded(record))  # key order kept
        assert (stamped.key, stamped.kind, stamped.session_id) == (
            record.key,
            record.kind,
            record.session_id,
        )


def test_restamp_leaves_a_record_without_a_timestamp_alone() -> None:
    record = SyntheticRecord(None, b"session_id=x;status=started", "malformed", None, None)
    assert restamp(record, 0) is record


def test_stamp_when_pulled_stamps_the_clock_at_each_pull_increasing_per_session() -> None:
    records = generate(GeneratorConfig(sessions=2, pings_per_session=3, seed=9)).records
    now = [1_767_225_600.0]  # 2026-01-01T00:00:00Z

    def clock() -> float:
        return now[0]

    stamped = stamp_when_pulled(records, clock)
    first = next(stamped)
    assert decoded(first)["timestamp"] == "2026-01-01T00:00:00.000Z"
    now[0] += 0.25
    rest = list(stamped)  # the clock stands still: same-session records get the next ms
    per_session: dict[str, list[datetime]] = defaultdict(list)
    for record in (first, *rest):
        per_session[str(record.session_id)].append(parse_ts(decoded(record)["timestamp"]))
    for stamps in per_session.values():
        assert all(b > a for a, b in pairwise(stamps))
        assert stamps[-1] - stamps[0] < timedelta(seconds=1)
    assert [r.session_id for r in rest] == [r.session_id for r in records[1:]]
