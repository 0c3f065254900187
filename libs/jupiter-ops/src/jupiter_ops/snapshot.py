"""What ``hatch run status`` shows, gathered: one :class:`Snapshot` of every job.

Each part is read on its own and a part that cannot be read carries the reason instead, so that
a ClickHouse outage still shows Kafka lag (and the other way round):

- lag: the job's consumer group on ``KAFKA_TOPIC``, per partition (committed offsets from the
  admin API against the end offsets). Flink commits offsets to the group when a checkpoint
  completes, so a running job lags by up to one checkpoint interval of records;
- rows: per table, rows whose ``ingested_at`` (the insert time ClickHouse fills in) is in the
  last minute and the last hour, as landed (a plain count: replays and not-yet-merged copies
  included);
- dead letters: by job and reason, written to ``DEAD_LETTER_TOPIC`` in the last hour (by the
  Kafka record time);
- checkpoints: the newest completed checkpoint (``<job-id>/chk-N``) and savepoint under the
  job's checkpoint folder, and their ages (file modification times). Only a ``file://``
  checkpoint directory can be looked at.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import urlparse

from jupiter_common.clickhouse import connect, explain_store_error
from jupiter_common.dead_letter import DeadLetter
from jupiter_common.registry import jobs
from jupiter_common.settings import Settings
from jupiter_ops.kafka import UNREACHABLE, PartitionLag, group_lag, read_topic

T = TypeVar("T")

MAX_DEAD_LETTERS_COUNTED: Final = 50_000


@dataclass(frozen=True, slots=True)
class Rows:
    last_minute: int
    last_hour: int


@dataclass(frozen=True, slots=True)
class SavedState:
    """A checkpoint or savepoint folder and when it was completed."""

    path: str
    completed: datetime


@dataclass(frozen=True, slots=True)
class JobStatus:
    job: str
    group: str
    table: str
    lag: list[PartitionLag] | str
    rows: Rows | str | None
    """None: the table does not exist (yet)."""
    checkpoint: SavedState | str | None
    savepoint: SavedState | str | None

    @property
    def total_lag(self) -> int | None:
        return None if isinstance(self.lag, str) else sum(p.lag for p in self.lag)


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken: datetime
    topic: str
    dead_letter_topic: str
    jobs: list[JobStatus]
    dead_letters: Counter[tuple[str, str]] | str = field(default_factory=Counter)


def _guard(read: Callable[[], T]) -> T | str:
    """``read()``, or why it failed (one line)."""
    try:
        return read()
    except Exception as exc:
        return " ".join(explain_store_error(exc).split())[:300] or type(exc).__name__


def take(settings: Settings, now: datetime | None = None) -> Snapshot:
    """Read everything the status view shows, for every job, against ``settings``."""
    moment = now or datetime.now(UTC)
    rows = _guard(lambda: table_rows(settings))
    statuses: list[JobStatus] = []
    down: str | None = None  # Kafka that does not answer is asked once, not once per job
    for job in jobs():
        mine = settings.for_job(job.name)
        lag = _lag(mine) if down is None else down
        if isinstance(lag, str) and lag.startswith(UNREACHABLE):
            down = lag
        statuses.append(_job_status(mine, job.table.name, rows, lag))
    since = int(moment.timestamp() * 1000) - 3_600_000
    return Snapshot(
        taken=moment,
        topic=settings.kafka_topic,
        dead_letter_topic=settings.dead_letter_topic,
        jobs=statuses,
        dead_letters=_guard(lambda: dead_letters_by_reason(settings, since))
        if down is None
        else down,
    )


def _lag(mine: Settings) -> list[PartitionLag] | str:
    return _guard(lambda: group_lag(mine, mine.kafka_topic, mine.consumer_group))


def _job_status(
    mine: Settings, table: str, rows: dict[str, Rows] | str, lag: list[PartitionLag] | str
) -> JobStatus:
    return JobStatus(
        job=mine.job,
        group=mine.consumer_group,
        table=table,
        lag=lag,
        rows=rows if isinstance(rows, str) else rows.get(table),
        checkpoint=_guard(lambda: latest(mine, "checkpoint")),
        savepoint=_guard(lambda: latest(mine, "savepoint")),
    )


def table_rows(settings: Settings) -> dict[str, Rows]:
    """Rows ingested in the last minute and hour, per existing table (by ``ingested_at``);
    a table that does not exist is left out."""
    client = connect(settings)
    try:
        found: dict[str, Rows] = {}
        for spec in (job.table for job in jobs()):
            name = spec.qualified(settings.clickhouse_database)
            if not client.command(f"EXISTS TABLE {name}"):
                continue
            # The table name comes from the table definition in code, never from data.
            sql = (
                "SELECT countIf(ingested_at >= now64(3) - INTERVAL 1 MINUTE), count()"  # noqa: S608
                f" FROM {name} WHERE ingested_at >= now64(3) - INTERVAL 1 HOUR"
            )
            minute, hour = client.query(sql).result_rows[0]
            found[spec.name] = Rows(int(minute), int(hour))
        return found
    finally:
        client.close()


def dead_letters_by_reason(settings: Settings, since_ms: int) -> Counter[tuple[str, str]]:
    """Dead letters written since ``since_ms`` (Unix ms), counted by (job, reason). Reading
    stops after :data:`MAX_DEAD_LETTERS_COUNTED` (each up to 512 KiB), so that a flood of them
    cannot stall the view; the counts then say so."""
    counts: Counter[tuple[str, str]] = Counter()
    for seen, message in enumerate(read_topic(settings, settings.dead_letter_topic, since_ms)):
        if seen == MAX_DEAD_LETTERS_COUNTED:
            counts[("(more)", f"counting stopped after {seen:,}")] += 1
            break
        try:
            letter = DeadLetter.from_json(message.value() or b"")
        except (ValueError, TypeError):
            counts[("?", "not a dead letter")] += 1
            continue
        counts[(letter.job, letter.reason)] += 1
    return counts


def latest(settings: Settings, kind: str) -> SavedState | None:
    """The newest completed checkpoint or savepoint (``kind``) of ``settings``' job."""
    root = settings.checkpoint_root
    parsed = urlparse(root)
    if not root:
        raise ValueError("FLINK_CHECKPOINT_DIR is not set")
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"{parsed.scheme}:// is not a local folder; see the Flink web UI")
    base = Path(parsed.path)
    pattern = "*/chk-*/_metadata" if kind == "checkpoint" else "savepoints/*/_metadata"
    found = [(meta.stat().st_mtime, meta.parent) for meta in base.glob(pattern) if meta.is_file()]
    if not found:
        return None
    mtime, folder = max(found)
    return SavedState(str(folder), datetime.fromtimestamp(mtime, UTC))
