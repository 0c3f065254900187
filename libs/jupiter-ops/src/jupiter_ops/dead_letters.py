"""``hatch run dead-letters list|show|replay``: the dead-letter topic as a command.

- ``list [--job J] [--reason R] [--since 2h] [--limit N]``: one line per dead letter, tab
  separated (id, failed at, job, reason, field, original topic[partition]@offset, size,
  message), the newest ``--limit`` (default 50) of those selected, oldest first;
- ``show ID``: one dead letter in full, the payload decoded when it is text;
- ``replay (--id ID ... | filters as list) [--topic T] [--dry-run]``: re-publish the original
  payloads to ``--topic`` (default ``KAFKA_TOPIC``), keyed by session id, with headers naming
  the original record and the reason (:mod:`jupiter_ops.replay`); ends with a count.

Settings as the jobs read them (``KAFKA_*``, ``DEAD_LETTER_TOPIC``). Exit status: 0 done, 1
Kafka failed, 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from jupiter_common.errors import JupiterError
from jupiter_common.settings import Settings, load_shared_settings
from jupiter_ops.kafka import KafkaReadError, read_topic
from jupiter_ops.letters import (
    DeadLetterSelectionError,
    Letter,
    Selection,
    decode,
    details,
    one_line,
    parse_id,
    parse_since,
)
from jupiter_ops.replay import ReplayError, plan, publish

DEFAULT_LIMIT = 50


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_shared_settings()
        if args.command == "list":
            return _list(settings, _selection(args))
        if args.command == "show":
            return _show(settings, args.id)
        return _replay(settings, args)
    except JupiterError as exc:
        code = 1 if isinstance(exc, KafkaReadError | ReplayError) else 2
        print(f"dead-letters: {exc}", file=sys.stderr)
        return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dead-letters", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one line per dead letter")
    _filters(listing, DEFAULT_LIMIT)
    show = commands.add_parser("show", help="one dead letter in full")
    show.add_argument("id", help="<partition>:<offset> in the dead-letter topic, as list prints")
    replay = commands.add_parser("replay", help="re-publish original payloads")
    replay.add_argument(
        "--id", action="append", default=[], help="a dead letter to replay (repeatable)"
    )
    _filters(replay, None)
    replay.add_argument("--topic", help="where to publish (default: KAFKA_TOPIC)")
    replay.add_argument("--dry-run", action="store_true", help="say what would be published")
    return parser


def _filters(parser: argparse.ArgumentParser, limit: int | None) -> None:
    parser.add_argument("--job", help="only dead letters of this job (base, events, movements)")
    parser.add_argument("--reason", help="only this reason (not_json, missing_field, ...)")
    parser.add_argument("--since", help="written since: 90s, 15m, 2h, 7d or an ISO 8601 time")
    parser.add_argument(
        "--limit", type=int, default=limit, help=f"the newest N selected (default {limit})"
    )


def _selection(args: argparse.Namespace) -> Selection:
    if args.limit is not None and args.limit < 1:
        raise DeadLetterSelectionError("--limit must be at least 1")
    since = None if args.since is None else parse_since(args.since, datetime.now(UTC))
    return Selection(job=args.job, reason=args.reason, since_ms=since, limit=args.limit)


def _letters(
    settings: Settings, since_ms: int | None = None, only: dict[int, int] | None = None
) -> Iterator[Letter]:
    records = (
        (message.partition() or 0, message.offset() or 0, message.value())
        for message in read_topic(settings, settings.dead_letter_topic, since_ms, only)
    )
    for item in decode(records):
        if isinstance(item, str):
            print(f"skipped: {item}", file=sys.stderr)
        else:
            yield item


def _list(settings: Settings, selection: Selection) -> int:
    selected = selection.apply(_letters(settings, selection.since_ms))
    for item in selected:
        print(one_line(item))
    print(f"{len(selected)} dead letters in {settings.dead_letter_topic}", file=sys.stderr)
    return 0


def _show(settings: Settings, text: str) -> int:
    partition, offset = parse_id(text)
    found = list(_letters(settings, only={partition: offset}))
    if not found:
        print(
            f"dead-letters: no dead letter {text} in {settings.dead_letter_topic}", file=sys.stderr
        )
        return 1
    print(details(found[0]))
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    selection = _selection(args)
    if args.id:
        if any(value is not None for value in (args.job, args.reason, args.since)):
            raise DeadLetterSelectionError("--id selects on its own: no --job/--reason/--since")
        wanted = [parse_id(text) for text in args.id]
        chosen: list[Letter] = []
        for partition, offset in wanted:
            found = list(_letters(settings, only={partition: offset}))
            if not found:
                raise DeadLetterSelectionError(f"no dead letter {partition}:{offset}")
            chosen += found
    elif any(value is not None for value in (args.job, args.reason, args.since, args.limit)):
        chosen = selection.apply(_letters(settings, selection.since_ms))
    else:
        raise DeadLetterSelectionError(
            "say what to replay: --id, or filters (--job, --reason, --since, --limit)"
        )
    topic = args.topic or settings.kafka_topic
    todo = plan(chosen)
    for why, count in sorted(todo.skipped.items()):
        print(f"skipped {count}: {why}", file=sys.stderr)
    if args.dry_run:
        for record in todo.records:
            key = "-" if record.key is None else record.key.decode("utf-8", "replace")
            print(f"would replay {record.source.id}\tkey {key}\t{len(record.value)}B -> {topic}")
        print(f"dry run: {len(todo.records)} records would be replayed to {topic}")
        return 0
    count = publish(settings, topic, todo.records)
    print(f"replayed {count} records to {topic}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
