"""``hatch run query "SELECT ..."``: run SQL against the configured store and print the result.

For looking at what landed without writing code. It uses the same settings as the jobs
(``CLICKHOUSE_*``; under ``hatch run`` the embedded store by default). The embedded store
admits one process at a time, so query it when no job is writing to it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jupiter_common.clickhouse import connect, explain_store_error
from jupiter_common.errors import JupiterError
from jupiter_common.settings import load_shared_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="query", description=__doc__.splitlines()[0])
    parser.add_argument("sql", nargs="?", help="the query; read from stdin when omitted")
    parser.add_argument(
        "--format", default="PrettyCompactMonoBlock", help="a ClickHouse output format"
    )
    args = parser.parse_args(argv)
    sql = args.sql if args.sql is not None else sys.stdin.read()
    try:
        settings = load_shared_settings()
        client = connect(settings)
    except JupiterError as exc:
        print(f"query: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"query: cannot open the store: {explain_store_error(exc)}", file=sys.stderr)
        return 1
    try:
        output = client.raw_query(
            sql, settings={"database": settings.clickhouse_database}, fmt=args.format
        )
    except Exception as exc:
        print(f"query: {explain_store_error(exc)}", file=sys.stderr)
        return 1
    finally:
        client.close()
    sys.stdout.write(output.decode("utf-8", errors="replace"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
