"""Spread rows over the writer's subtasks with exactly one buffer per subtask.

The writer buffers rows in keyed Flink state. Keying by session would give thousands of tiny
buffers; keying by a handful of integers gives big batches, but Flink places keys on subtasks
by hashing (``murmur(key.hashCode()) % maxParallelism`` -> key group -> subtask), so naive keys
``0..p-1`` can land two buffers on one subtask and none on another. :func:`shard_keys` picks,
for each subtask, the smallest integer key that Flink places on it, mirroring Flink's
``KeyGroupRangeAssignment`` and ``MathUtils.murmurHash``.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

_MASK = 0xFFFFFFFF


def _signed(value: int) -> int:
    value &= _MASK
    return value - (1 << 32) if value & 0x80000000 else value


def _rotl(value: int, bits: int) -> int:
    value &= _MASK
    return ((value << bits) | (value >> (32 - bits))) & _MASK


def murmur_hash(code: int) -> int:
    """Flink's ``MathUtils.murmurHash(int)``: a non-negative int."""
    h = (code * 0xCC9E2D51) & _MASK
    h = _rotl(h, 15)
    h = (h * 0x1B873593) & _MASK
    h = _rotl(h, 13)
    h = (h * 5 + 0xE6546B64) & _MASK
    h ^= 4
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    signed = _signed(h)
    if signed >= 0:
        return signed
    return -signed if signed != -(1 << 31) else 0


def subtask_of(key: int, parallelism: int, max_parallelism: int) -> int:
    """The subtask Flink assigns an ``Integer`` key to."""
    key_group = murmur_hash(_signed(key)) % max_parallelism
    return key_group * parallelism // max_parallelism


@lru_cache(maxsize=64)
def shard_keys(parallelism: int, max_parallelism: int) -> tuple[int, ...]:
    """``keys[i]`` is an integer key that Flink places on subtask ``i``."""
    if not 1 <= parallelism <= max_parallelism:
        raise ValueError(f"parallelism {parallelism} must be in 1..{max_parallelism}")
    keys: dict[int, int] = {}
    candidate = 0
    while len(keys) < parallelism:
        keys.setdefault(subtask_of(candidate, parallelism, max_parallelism), candidate)
        candidate += 1
    return tuple(keys[i] for i in range(parallelism))


def shard_of(session_id: str, keys: tuple[int, ...]) -> int:
    """The shard key for a row of ``session_id``: stable across processes and restarts."""
    return keys[zlib.crc32(session_id.encode()) % len(keys)]
