"""``hatch run migrate [--job NAME | --all]``: bring the jobs' ClickHouse tables to this
version's definitions without starting a job.

It does what every job does at start (:func:`~jupiter_common.clickhouse.ensure_table`): creates
a missing database or table, adds the new columns that can be added, warns about columns the
definitions lack, and stops on a changed column type. It reads each job's own settings
(``CLICKHOUSE_*``, under ``hatch run`` the embedded store by default), so run it where the job
would run, with the job's environment. Exit 0 when every table is ready, 1 when one is not,
2 for bad settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from jupiter_common.clickhouse import connect, ensure_table, explain_store_error
from jupiter_common.errors import JupiterError
from jupiter_common.registry import get_job, job_names
from jupiter_common.settings import load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migrate", description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--job", choices=job_names(), help="the table of this job")
    which.add_argument("--all", action="store_true", help="every job's table (the default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    failed = False
    for job in [args.job] if args.job else job_names():
        try:
            settings = load_settings(job)
        except JupiterError as exc:
            print(f"migrate: {exc}", file=sys.stderr)
            return 2
        table = get_job(job).table
        try:
            client = connect(settings)
            try:
                ready = ensure_table(client, table, settings.clickhouse_database)
            finally:
                client.close()
        except JupiterError as exc:
            print(f"migrate: {job}: {exc}", file=sys.stderr)
            failed = True
            continue
        except Exception as exc:
            print(f"migrate: {job}: {table.name}: {explain_store_error(exc)}", file=sys.stderr)
            failed = True
            continue
        if ready.created:
            done = "created"
        elif ready.added:
            done = f"added {', '.join(ready.added)}"
        else:
            done = "up to date"
        unknown = f" (not in the definition, left alone: {', '.join(ready.unknown)})"
        print(f"{job}: {ready.table} {done}{unknown if ready.unknown else ''}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
