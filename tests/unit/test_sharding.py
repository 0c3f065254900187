"""Shard keys: the Python mirror of Flink's key placement, checked against Flink's own code.

The reference values below were produced by a small Java program that copies
``org.apache.flink.util.MathUtils.murmurHash(int)`` and the ``KeyGroupRangeAssignment`` arithmetic
(``murmurHash(key.hashCode()) % maxParallelism * parallelism / maxParallelism``), compiled with
javac and run against flink-dist 2.2.1, where it also asserted that the copy agrees with the real
``MathUtils.murmurHash`` and ``KeyGroupRangeAssignment.assignKeyToParallelOperator``. The CRC-32
values come from ``java.util.zip.CRC32`` over the id's UTF-8 bytes.
"""

from __future__ import annotations

import random
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import pytest

from jupiter_common.flink.sharding import murmur_hash, shard_keys, shard_of, subtask_of

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1

MURMUR_REFERENCE = {
    0: 593689054,
    1: 68075478,
    -1: 1982413648,
    2: 1085422463,
    7: 1343918321,
    42: 1134849565,
    1000: 3506311,
    123456789: 1088346449,
    -987654321: 1314828554,
    INT_MIN: 1718298732,
    INT_MAX: 1653689534,
}

# (key, parallelism, max_parallelism) -> subtask, from KeyGroupRangeAssignment.
SUBTASK_REFERENCE = {
    (0, 4, 128): 2,
    (1, 4, 128): 2,
    (2, 4, 128): 3,
    (3, 4, 128): 3,
    (42, 3, 128): 0,
    (7, 8, 256): 7,
    (-1, 5, 256): 1,
    (1000, 2, 128): 0,
    (INT_MAX, 8, 128): 3,
    (INT_MIN, 6, 256): 2,
}

# The smallest Integer key Flink places on each subtask, found by the Java program.
SHARD_KEYS_REFERENCE = {
    (3, 128): (4, 9, 0),
    (4, 128): (4, 9, 0, 2),
    (8, 256): (4, 12, 10, 2, 6, 9, 0, 7),
}

# session id -> java.util.zip.CRC32 of its UTF-8 bytes.
CRC32_REFERENCE = {
    "f1e2d3c4-b5a6-7c8d-9e0f-1a2b3c4d5e6f": 3906210836,
    "a1b2c3d4-e5f6-7a8b-9c0d-1e2f3a4b5c6d": 2388125122,
    "00000000-0000-0000-0000-000000000000": 2169625225,
}


@pytest.mark.parametrize(("code", "expected"), MURMUR_REFERENCE.items())
def test_murmur_hash_matches_flink(code: int, expected: int) -> None:
    assert murmur_hash(code) == expected


@pytest.mark.parametrize("code", [0, 1, -1, INT_MIN, INT_MAX, 12345, -54321])
def test_murmur_hash_is_a_non_negative_int(code: int) -> None:
    assert 0 <= murmur_hash(code) <= INT_MAX


@pytest.mark.parametrize(("case", "expected"), SUBTASK_REFERENCE.items())
def test_subtask_of_matches_flink(case: tuple[int, int, int], expected: int) -> None:
    key, parallelism, max_parallelism = case
    assert subtask_of(key, parallelism, max_parallelism) == expected


def test_naive_keys_collide() -> None:
    """Why shard_keys exists: keys 0 and 1 land on the same subtask of four."""
    assert subtask_of(0, 4, 128) == subtask_of(1, 4, 128)


@pytest.mark.parametrize(("case", "expected"), SHARD_KEYS_REFERENCE.items())
def test_shard_keys_match_flink(case: tuple[int, int], expected: tuple[int, ...]) -> None:
    assert shard_keys(*case) == expected


@pytest.mark.parametrize("max_parallelism", [128, 256])
@pytest.mark.parametrize("parallelism", range(1, 9))
def test_shard_keys_cover_every_subtask_once(parallelism: int, max_parallelism: int) -> None:
    keys = shard_keys(parallelism, max_parallelism)
    assert len(keys) == parallelism
    assert len(set(keys)) == parallelism
    assert [subtask_of(key, parallelism, max_parallelism) for key in keys] == list(
        range(parallelism)
    )
    # Each key is the smallest one Flink places on its subtask.
    for subtask, key in enumerate(keys):
        assert all(subtask_of(k, parallelism, max_parallelism) != subtask for k in range(key))


def test_shard_keys_when_parallelism_equals_max_parallelism() -> None:
    keys = shard_keys(16, 16)
    assert [subtask_of(key, 16, 16) for key in keys] == list(range(16))


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Turn a hang into a TimeoutError (SIGALRM; the code under test is pure Python)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_shard_keys_refuses_parallelism_above_max_parallelism() -> None:
    with deadline(0.2), pytest.raises(ValueError, match="parallelism"):
        shard_keys(200, 128)


@pytest.mark.parametrize(("session_id", "crc"), CRC32_REFERENCE.items())
def test_shard_of_is_crc32_of_the_session_id(session_id: str, crc: int) -> None:
    keys = shard_keys(4, 128)
    assert shard_of(session_id, keys) == keys[crc % 4]


def test_shard_of_is_stable() -> None:
    keys = shard_keys(5, 128)
    rng = random.Random(0)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(200)]
    first = [shard_of(session_id, keys) for session_id in ids]
    assert [shard_of(session_id, keys) for session_id in ids] == first
    assert [shard_of(session_id, shard_keys(5, 128)) for session_id in ids] == first
    assert all(key in keys for key in first)


def test_a_single_shard_takes_everything() -> None:
    keys = shard_keys(1, 128)
    assert {shard_of(str(uuid.UUID(int=i)), keys) for i in range(100)} == {keys[0]}


@pytest.mark.parametrize("parallelism", [2, 3, 4, 8])
def test_shard_of_spreads_sessions_over_every_shard(parallelism: int) -> None:
    keys = shard_keys(parallelism, 128)
    rng = random.Random(0)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(10_000)]
    per_key = Counter(shard_of(session_id, keys) for session_id in ids)
    assert set(per_key) == set(keys)
    fair = len(ids) / parallelism
    assert all(0.85 * fair <= n <= 1.15 * fair for n in per_key.values()), per_key
    # ... and therefore over every writer subtask.
    subtasks = Counter(subtask_of(key, parallelism, 128) for key in per_key.elements())
    assert set(subtasks) == set(range(parallelism))
