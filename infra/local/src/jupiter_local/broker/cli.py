"""``python -m jupiter_local.broker start|stop|status|create-topics|reset``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from jupiter_local.broker.jvm import DEFAULT_DATA_DIR, KafkaLocalError
from jupiter_local.broker.lifecycle import (
    broker_status,
    choose_broker,
    create_topics,
    reset_broker,
    start_broker,
    stop_broker,
)
from jupiter_local.processes import HOST

EXIT_NOT_RUNNING = 3


def _parse_topic(spec: str) -> tuple[str, int]:
    name, sep, count = spec.partition(":")
    if not name or (sep and not count.isdigit()):
        raise argparse.ArgumentTypeError(f"bad topic spec {spec!r}, expected NAME[:PARTITIONS]")
    return name, int(count) if sep else -1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jupiter_local.broker", description="Local single-node Kafka (KRaft) broker."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_data_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="broker state dir")
        return p

    start = with_data_dir(sub.add_parser("start", help="start (or reuse) the broker"))
    ports = "default: the running broker's, else 9092 and 9093 when free, else free ports"
    start.add_argument("--port", type=int, default=None, help=f"exactly this port ({ports})")
    start.add_argument("--controller-port", type=int, default=None, help="exactly this port")
    start.add_argument("--partitions", type=int, default=4, help="default num.partitions")
    start.add_argument("--timeout", type=float, default=60.0)

    stop = with_data_dir(sub.add_parser("stop", help="stop the broker"))
    stop.add_argument("--timeout", type=float, default=30.0)

    with_data_dir(sub.add_parser("status", help="exit 0 if running, 3 if not"))
    with_data_dir(sub.add_parser("reset", help="stop the broker and delete the data dir"))

    topics = sub.add_parser("create-topics", help="create topics idempotently")
    topics.add_argument("--bootstrap", default=f"{HOST}:9092")
    topics.add_argument("--partitions", type=int, default=4, help="for specs without :N")
    topics.add_argument("--timeout", type=float, default=30.0)
    topics.add_argument("topics", nargs="+", type=_parse_topic, metavar="NAME[:PARTITIONS]")
    return parser


def _cmd_start(args: argparse.Namespace) -> int:
    if args.port is None and args.controller_port is None:
        choice = choose_broker(
            None, args.data_dir, partitions=args.partitions, timeout=args.timeout
        )
        print(choice.line)
        return 0
    t0 = time.monotonic()
    handle = start_broker(
        args.data_dir,
        args.port or 9092,
        args.controller_port or 9093,
        args.partitions,
        args.timeout,
    )
    verb = (
        "already running" if handle.already_running else f"started in {time.monotonic() - t0:.1f}s"
    )
    print(
        f"kafka {verb}: pid {handle.pid}, bootstrap {handle.bootstrap}, data dir {handle.data_dir}"
    )
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    pid = stop_broker(args.data_dir, args.timeout)
    print(f"kafka stopped (pid {pid})" if pid else f"kafka not running for {args.data_dir}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    handle = broker_status(args.data_dir)
    if handle is None:
        print(f"kafka not running for {Path(args.data_dir).resolve()}")
        return EXIT_NOT_RUNNING
    print(
        f"kafka running: pid {handle.pid}, bootstrap {handle.bootstrap}, data dir {handle.data_dir}"
    )
    return 0


def _cmd_create_topics(args: argparse.Namespace) -> int:
    specs: list[tuple[str, int]] = args.topics
    topics = {name: (n if n > 0 else args.partitions) for name, n in specs}
    create_topics(args.bootstrap, topics, args.timeout)
    print("topics ready: " + ", ".join(f"{name}:{n}" for name, n in topics.items()))
    return 0


def _cmd_reset(args: argparse.Namespace) -> int:
    reset_broker(args.data_dir)
    print(f"kafka reset: {Path(args.data_dir).resolve()} removed")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "start": _cmd_start,
    "stop": _cmd_stop,
    "status": _cmd_status,
    "create-topics": _cmd_create_topics,
    "reset": _cmd_reset,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KafkaLocalError as exc:
        print(f"broker {args.command}: error: {exc}", file=sys.stderr)
        return 1
