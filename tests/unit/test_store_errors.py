"""What a person is told when the embedded store is held by another process (a running job):
reproduced for real with two processes, as chDB allows one per store directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOLD = """
import sys, clickhouse_connect
client = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
client.command("SELECT 1")
print("held", flush=True)
sys.stdin.read()
"""

OPEN = """
import sys, clickhouse_connect
from jupiter_common.clickhouse import explain_store_error
try:
    clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1]).query("SELECT 1")
    print("opened")
except Exception as exc:
    print(explain_store_error(exc))
"""


def test_a_store_held_by_another_process_is_explained(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, store],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        told = subprocess.run(
            [sys.executable, "-c", OPEN, store], capture_output=True, text=True, timeout=120
        ).stdout.strip()
    finally:
        holder.communicate("", timeout=60)
    assert told == (
        "the embedded store is open in another process (a running job?); try again after it"
    )
