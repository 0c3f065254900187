"""``hatch run status [--watch [--interval S]]``: every job at a glance, in the terminal.

Per job: consumer-group lag per partition, rows landed in its table in the last minute and hour,
latest checkpoint and savepoint and their age; then dead letters by job and reason in the last
hour. What each figure means and where it comes from: :mod:`jupiter_ops.snapshot`. One shot by
default; ``--watch`` redraws it every ``--interval`` seconds (rich's live display) until Ctrl-C.

Settings as the jobs read them (``KAFKA_*``, ``CLICKHOUSE_*``, ``FLINK_CHECKPOINT_DIR``...).
With the embedded store (``CLICKHOUSE_EMBEDDED_PATH``) the rows can only be read while no job
has the store open; a part that cannot be read says why, the others are still shown.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import datetime

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from jupiter_common.errors import JupiterError
from jupiter_common.settings import load_shared_settings
from jupiter_ops.snapshot import JobStatus, SavedState, Snapshot, take


def age(then: datetime, now: datetime) -> str:
    """``42s``, ``7m 05s``, ``3h 12m``, ``2d 4h``: short enough for a table cell."""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def _saved(state: SavedState | str | None, now: datetime) -> Text:
    if isinstance(state, str):
        return Text(state, style="red")
    if state is None:
        return Text("none", style="dim")
    return Text(f"{age(state.completed, now)} ago  {state.path}")


def _lag_cell(job: JobStatus) -> Text:
    if isinstance(job.lag, str):
        return Text(job.lag, style="red")
    parts = []
    for p in job.lag:
        shown = f"{p.lag}" if p.committed is not None else f"{p.lag} (no commit)"
        parts.append(f"p{p.partition}: {shown}")
    total = job.total_lag or 0
    style = "green" if total == 0 else "yellow"
    return Text(f"{total}  " + ", ".join(parts), style=style)


def jobs_table(snapshot: Snapshot) -> Table:
    table = Table(title=f"jobs on {snapshot.topic}", title_justify="left", expand=False)
    for column in ("job", "group", "lag (per partition)", "table", "rows 1m", "rows 1h"):
        table.add_column(column, justify="right" if column.startswith("rows") else "left")
    for job in snapshot.jobs:
        if isinstance(job.rows, str):
            minute, hour = Text(job.rows, style="red"), Text("")
        elif job.rows is None:
            minute, hour = Text("no table", style="dim"), Text("")
        else:
            minute, hour = Text(f"{job.rows.last_minute:,}"), Text(f"{job.rows.last_hour:,}")
        table.add_row(job.job, job.group, _lag_cell(job), job.table, minute, hour)
    return table


def state_table(snapshot: Snapshot) -> Table:
    table = Table(title="checkpoints and savepoints", title_justify="left")
    for column in ("job", "latest checkpoint", "latest savepoint"):
        table.add_column(column)
    for job in snapshot.jobs:
        table.add_row(
            job.job, _saved(job.checkpoint, snapshot.taken), _saved(job.savepoint, snapshot.taken)
        )
    return table


def dead_letter_table(snapshot: Snapshot) -> Table | Text:
    title = f"dead letters in the last hour ({snapshot.dead_letter_topic})"
    if isinstance(snapshot.dead_letters, str):
        return Text(f"{title}: {snapshot.dead_letters}", style="red")
    if not snapshot.dead_letters:
        return Text(f"{title}: none", style="green")
    table = Table(title=title, title_justify="left")
    for column in ("job", "reason", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for (job, reason), count in sorted(snapshot.dead_letters.items()):
        table.add_row(job, reason, f"{count:,}")
    return table


def render(snapshot: Snapshot) -> Group:
    stamp = snapshot.taken.isoformat(timespec="seconds").replace("+00:00", "Z")
    return Group(
        Text(f"Jupiter status at {stamp}", style="bold"),
        jobs_table(snapshot),
        state_table(snapshot),
        dead_letter_table(snapshot),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="status", description=__doc__.splitlines()[0])
    parser.add_argument("--watch", action="store_true", help="redraw until Ctrl-C")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between redraws")
    parser.add_argument("--width", type=int, help="columns (default: the terminal's)")
    args = parser.parse_args(argv)
    if args.interval < 0.5:
        parser.error("--interval must be at least 0.5 s")
    try:
        settings = load_shared_settings()
    except JupiterError as exc:
        print(f"status: {exc}", file=sys.stderr)
        return 2
    console = Console(width=args.width)
    if not args.watch:
        console.print(render(take(settings)))
        return 0
    try:
        with Live(render(take(settings)), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(args.interval)  # the refresh period, not a synchronisation
                live.update(render(take(settings)), refresh=True)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
