"""Publish synthetic session telemetry (see :mod:`jupiter_local.synthetic`) to Kafka.

Contract
--------
* :func:`produce` sends records in the given order (key and value bytes unchanged), waits for
  every delivery report, and returns the number of records the broker acknowledged. It raises
  :class:`ProducerError` if any delivery fails or the final flush times out; nothing is
  silently dropped.
* With ``rate`` set, records are paced against an absolute schedule (record ``i`` is sent no
  earlier than ``t0 + i / rate``), so pacing does not drift with per-record overhead.
* CLI: ``python -m jupiter_local.producer --sessions 100 --pings 20 --seed 7 ...`` generates a
  stream, produces it, prints a one-line summary and optionally writes the
  :class:`~jupiter_local.synthetic.Expectations` as JSON (``--expect-json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from confluent_kafka import KafkaError, Message, Producer

from jupiter_common.errors import JupiterError
from jupiter_local.progress import progress_bar
from jupiter_local.synthetic import GeneratedStream, GeneratorConfig, SyntheticRecord, generate

__all__ = ["DEFAULT_BOOTSTRAP", "DEFAULT_TOPIC", "ProducerError", "main", "produce"]

DEFAULT_BOOTSTRAP: Final = "127.0.0.1:9092"
DEFAULT_TOPIC: Final = "sessions-topic"
_PROGRESS_INTERVAL_S: Final = 0.1


class ProducerError(JupiterError):
    """A record could not be delivered (or the flush timed out)."""


def produce(
    stream_or_records: GeneratedStream | Iterable[SyntheticRecord],
    bootstrap: str,
    topic: str,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    flush_timeout: float = 60.0,
    config: Mapping[str, Any] | None = None,
) -> int:
    """Produce every record to ``topic`` and return how many were delivered.

    Args:
        stream_or_records: A :class:`GeneratedStream` or any iterable of records (e.g.
            :func:`~jupiter_local.synthetic.iter_records`), sent in iteration order.
        bootstrap: Kafka ``bootstrap.servers``.
        topic: Destination topic (must exist or be auto-creatable).
        rate: Maximum records per second; ``None`` means as fast as possible.
        progress: Called with the number of delivered records about ten times a second
            while records are sent and flushed, and once at the end (a progress bar's
            callback: :mod:`jupiter_local.progress`).
        flush_timeout: Seconds to wait for outstanding deliveries at the end.
        config: Extra/overriding librdkafka settings.

    Raises:
        ProducerError: On the first failed delivery report (after draining in-flight
            records), or if records are still undelivered after ``flush_timeout``.
        ValueError: If ``rate`` is not positive.
    """
    if rate is not None and rate <= 0:
        raise ValueError("rate must be > 0")
    records: Iterable[SyntheticRecord] = (
        stream_or_records.records
        if isinstance(stream_or_records, GeneratedStream)
        else stream_or_records
    )
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": 30_000,
    }
    if config:
        conf.update(config)
    producer = Producer(conf)

    delivered = 0
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        nonlocal delivered
        if err is not None:
            failures.append(f"{err.str()} (partition={msg.partition()}, key={msg.key()!r})")
        else:
            delivered += 1

    start = time.monotonic()
    next_progress = start + _PROGRESS_INTERVAL_S
    for sent, record in enumerate(records):  # `sent` = records handed over before this one
        if rate is not None:
            delay = start + sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        while True:
            try:
                producer.produce(topic, value=record.value, key=record.key, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                producer.poll(0.05)
        producer.poll(0)
        if failures:
            break
        if progress is not None and time.monotonic() >= next_progress:
            progress(delivered)
            next_progress = time.monotonic() + _PROGRESS_INTERVAL_S

    # Flush in short steps so that a progress bar keeps moving while the last records drain.
    deadline = time.monotonic() + flush_timeout
    remaining = producer.flush(0)
    while remaining and time.monotonic() < deadline:
        remaining = producer.flush(min(_PROGRESS_INTERVAL_S, deadline - time.monotonic()))
        if progress is not None:
            progress(delivered)
    if failures:
        raise ProducerError(
            f"{len(failures)} record(s) failed delivery to {topic!r} ({delivered} delivered); "
            f"first: {failures[0]}"
        )
    if remaining:
        raise ProducerError(
            f"{remaining} record(s) still undelivered after {flush_timeout}s flush "
            f"({delivered} delivered to {topic!r})"
        )
    if progress is not None:
        progress(delivered)
    return delivered


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jupiter_local.producer",
        description="Produce deterministic synthetic vehicle-session telemetry to Kafka.",
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP,
        help="bootstrap servers (env KAFKA_BOOTSTRAP, default %(default)s)",
    )
    parser.add_argument(
        "--topic",
        default=os.environ.get("KAFKA_TOPIC") or DEFAULT_TOPIC,
        help="topic (env KAFKA_TOPIC, default %(default)s)",
    )
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--pings", type=int, default=20, help="mean en_route pings per session")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=None, help="max records/s (default: max)")
    parser.add_argument("--duplicates", type=_ratio, default=0.0, help="duplicate ratio")
    parser.add_argument("--reorder", type=_ratio, default=0.0, help="reorder ratio")
    parser.add_argument("--malformed", type=int, default=0, help="number of malformed records")
    parser.add_argument("--cancel-ratio", type=_ratio, default=0.1)
    parser.add_argument("--interval-ms", type=int, default=1000, help="ping interval")
    parser.add_argument(
        "--start-time",
        type=datetime.fromisoformat,
        default=None,
        help="ISO-8601 time of the first message, with timezone (default 2025-07-19T12:00Z)",
    )
    parser.add_argument(
        "--sequential", action="store_true", help="sessions back to back instead of interleaved"
    )
    parser.add_argument("--expect-json", type=Path, default=None, metavar="PATH")
    parser.add_argument(
        "--dry-run", action="store_true", help="generate and report, but do not touch Kafka"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code (0 ok, 1 delivery failure)."""
    args = _parse_args(argv)
    extra: dict[str, Any] = {}
    if args.start_time is not None:
        extra["start_time"] = args.start_time
    try:
        gen_config = GeneratorConfig(
            sessions=args.sessions,
            pings_per_session=args.pings,
            cancel_ratio=args.cancel_ratio,
            seed=args.seed,
            ping_interval_ms=args.interval_ms,
            interleave=not args.sequential,
            duplicate_ratio=args.duplicates,
            reorder_ratio=args.reorder,
            malformed_count=args.malformed,
            **extra,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    stream = generate(gen_config)
    expected = stream.expected
    if args.expect_json is not None:
        args.expect_json.parent.mkdir(parents=True, exist_ok=True)
        args.expect_json.write_text(json.dumps(expected.as_dict(), indent=2) + "\n")

    if args.dry_run:
        delivered = 0
    else:
        try:
            with progress_bar("producing", len(stream.records)) as bar:
                delivered = produce(
                    stream, args.bootstrap, args.topic, rate=args.rate, progress=bar
                )
        except ProducerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    elapsed = time.monotonic() - started
    counts = " ".join(f"{k}={v}" for k, v in expected.as_dict().items())
    target = "dry-run" if args.dry_run else f"{args.topic}@{args.bootstrap}"
    print(
        f"produced {delivered}/{len(stream.records)} records to {target} in {elapsed:.1f}s "
        f"(seed={args.seed}; expected {counts})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
