"""infra/compose/redeploy.sh against a stand-in for `docker`, and the shell scripts' lint."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from deploy_support import CHECKPOINT_DIR, COMPOSE, IMAGES, compose_job_file, read

from jupiter_common import registry
from jupiter_common.settings import load_settings

FAKE_DOCKER = r'''
"""Stand-in for `docker compose -f FILE (exec -T SERVICE curl ... URL | up ...)`: a Flink
JobManager REST API with one running job, and `up`, which starts a new job restored from the
savepoint. Every call is appended to calls.jsonl."""
import json, os, sys
from pathlib import Path

here = Path(os.environ["FAKE_DOCKER_DIR"])
state_file = here / "state.json"
state = json.loads(state_file.read_text()) if state_file.exists() else {"phase": "running"}
args = sys.argv[1:]
assert args[:2] == ["compose", "-f"], args
rest = args[3:]
call = {"compose_file": args[2], "args": rest}
OLD, NEW, TRIGGER = "a" * 32, "b" * 32, "trigger-1"
SAVEPOINT = "file:/opt/flink/checkpoints/movements/jupiter-movements/savepoints/savepoint-aaaaaa-1"

def answer(body):
    print(json.dumps(body))

if rest[0] == "up":
    call["env"] = {k: v for k, v in os.environ.items() if k.startswith("MOVEMENTS_")}
    state["phase"] = "redeployed"
elif rest[0] == "exec":
    if os.environ.get("FAKE_DOCKER_DOWN") and state["phase"] != "redeployed":
        sys.exit(1)
    curl = rest[3:]
    url = curl[-1]
    path = url.removeprefix("http://localhost:8081")
    call["path"] = path
    if "-d" in curl:
        call["body"] = json.loads(curl[curl.index("-d") + 1])
        call["method"] = curl[curl.index("-X") + 1]
    phase = state["phase"]
    if path == "/overview":
        answer({"taskmanagers": 1})
    elif path == "/jobs/overview":
        jobs = {
            "running": [] if os.environ.get("FAKE_NO_JOB") else [
                {"jid": OLD, "name": "jupiter-movements", "state": "RUNNING"}
            ],
            "stopped": [{"jid": OLD, "name": "jupiter-movements", "state": "FINISHED"}],
            "redeployed": [{"jid": NEW, "name": "jupiter-movements", "state": "RUNNING"}],
        }[phase]
        answer({"jobs": jobs})
    elif path == f"/jobs/{OLD}/stop":
        answer({"request-id": TRIGGER})
        if not os.environ.get("FAKE_SAVEPOINT_FAILS"):
            state["phase"] = "stopped"
    elif path == f"/jobs/{OLD}/savepoints/{TRIGGER}":
        if os.environ.get("FAKE_SAVEPOINT_FAILS"):
            answer({"status": {"id": "COMPLETED"},
                    "operation": {"failure-cause": {"class": "x", "stack-trace": "boom\nat x"}}})
        else:
            answer({"status": {"id": "COMPLETED"}, "operation": {"location": SAVEPOINT}})
    elif path == f"/jobs/{NEW}/checkpoints":
        answer({"latest": {"restored": {"external_path": SAVEPOINT, "is_savepoint": True}}})
    else:
        sys.exit(22)
else:
    sys.exit(f"unexpected: {args}")
with (here / "calls.jsonl").open("a") as calls:
    calls.write(json.dumps(call) + "\n")
state_file.write_text(json.dumps(state))
'''


def run_redeploy(
    tmp_path: Path, *args: str, env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FAKE_", *(f"{job.name.upper()}_" for job in registry.JOBS)))
    }
    environ.update(
        PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}",
        FAKE_DOCKER_DIR=str(tmp_path),
        **(env or {}),
    )
    result = subprocess.run(
        ["bash", str(COMPOSE / "redeploy.sh"), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls_file = tmp_path / "calls.jsonl"
    calls = (
        [json.loads(line) for line in read(calls_file).splitlines()] if calls_file.exists() else []
    )
    return result, calls


def test_redeploy_stops_with_a_savepoint_then_recreates_with_the_new_scale(tmp_path: Path) -> None:
    result, calls = run_redeploy(
        tmp_path, "movements", "--parallelism", "3", "--taskmanagers", "2", "--timeout", "20"
    )
    assert result.returncode == 0, result.stderr
    assert {call["compose_file"] for call in calls} == {str(compose_job_file("movements"))}
    stops = [call for call in calls if call.get("path", "").endswith("/stop")]
    assert len(stops) == 1
    # The savepoint goes where the job looks for it on its next start (restore.py's layout).
    root = load_settings("movements", environ={"FLINK_CHECKPOINT_DIR": CHECKPOINT_DIR})
    assert stops[0]["method"] == "POST"
    assert stops[0]["body"] == {
        "drain": True,
        "targetDirectory": f"{root.checkpoint_root}/savepoints",
    }
    ups = [call for call in calls if call["args"][0] == "up"]
    assert ups == [
        {
            "compose_file": str(compose_job_file("movements")),
            "args": [
                "up",
                "-d",
                "--force-recreate",
                "movements-jobmanager",
                "movements-taskmanager",
            ],
            "env": {"MOVEMENTS_PARALLELISM": "3", "MOVEMENTS_TASKMANAGERS": "2"},
        }
    ]
    assert calls.index(ups[0]) > calls.index(stops[0])
    assert "resumed from the savepoint" in result.stdout


def test_redeploy_keeps_the_job_running_when_the_savepoint_fails(tmp_path: Path) -> None:
    result, calls = run_redeploy(
        tmp_path, "movements", "--timeout", "20", env={"FAKE_SAVEPOINT_FAILS": "1"}
    )
    assert result.returncode == 1
    assert "savepoint failed" in result.stderr and "boom" in result.stderr
    assert not [call for call in calls if call["args"][0] == "up"]


def test_redeploy_refuses_when_no_jobmanager_answers(tmp_path: Path) -> None:
    result, calls = run_redeploy(tmp_path, "movements", env={"FAKE_DOCKER_DOWN": "1"})
    assert result.returncode == 1
    assert "--no-savepoint" in result.stderr
    assert not [call for call in calls if call["args"][0] == "up"]


@pytest.mark.parametrize(
    ("env", "args"),
    [({"FAKE_NO_JOB": "1"}, []), ({"FAKE_DOCKER_DOWN": "1"}, ["--no-savepoint"])],
    ids=["no-running-job", "no-savepoint"],
)
def test_redeploy_without_a_job_to_stop_just_recreates(
    tmp_path: Path, env: dict[str, str], args: list[str]
) -> None:
    result, calls = run_redeploy(tmp_path, "movements", *args, env=env)
    assert result.returncode == 0, result.stderr
    assert not [call for call in calls if call.get("path", "").endswith("/stop")]
    assert [call["args"][0] for call in calls].count("up") == 1
    assert "restored from:" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nope"],
        ["../movements"],
        ["movements", "events"],
        ["movements", "--parallelism", "0"],
        ["movements", "--parallelism"],
    ],
)
def test_redeploy_rejects_bad_arguments(tmp_path: Path, args: list[str]) -> None:
    result, calls = run_redeploy(tmp_path, *args)
    assert result.returncode in (1, 2)
    assert calls == []


@pytest.mark.parametrize(
    "script", [COMPOSE / "redeploy.sh", IMAGES / "jupiter-entrypoint.sh"], ids=lambda p: p.name
)
def test_shell_scripts_are_shellcheck_clean(script: Path) -> None:
    text = read(script)
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.access(script, os.X_OK), f"{script} is not executable"
    subprocess.run(["bash", "-n", str(script)], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (it comes with the hatch environment)")
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
