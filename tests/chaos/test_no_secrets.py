"""No secret in any log: real bounded runs of a job with canary secrets, and every place a run
writes anything searched for them.

Flink's Python runner (Beam's ``DefaultJobBundleFactory``) logs the Python workers' whole
environment, which they inherit from the JVM, which inherits it from the job's driver. Each run
here sets ``CLICKHOUSE_PASSWORD`` and ``KAFKA_SASL_PASSWORD`` (as variables or through
``*_FILE``) to unique canaries (the embedded ClickHouse and PLAINTEXT Kafka ignore them) and a
non-secret probe variable, and then searches, for both canaries:

- the driver's stdout and stderr;
- every file of the run's own Flink log directory (``FLINK_LOG_DIR``), checkpoint directory and
  JVM temporary directory (``-Djava.io.tmpdir``, where the Python workers keep their boot log,
  ``flink-python-udf-boot.log``, which Flink deletes when the job ends: those logs are read
  while the job runs, every 0.2 s).

Everything is per test, so no earlier run can make a test pass or fail. The probe shows that
the search is not vacuous: with PyFlink's own log configuration the environment dump is in the
JVM log (the probe is there, the secrets are not); with Jupiter's it is not there at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import clickhouse_connect
import pyflink
import pytest
from support import SEED, job_environment, produce, query, unique
from table_rows import write_rows

from jupiter_common.clickhouse import ensure_table
from jupiter_common.tables import SESSION_MOVEMENTS
from jupiter_common.writer import ClickHouseWriter, RetryPolicy
from jupiter_local.chaos_profile import report

pytestmark = pytest.mark.chaos

MODULE = "jupiter_movements"
PYFLINK_CONF = Path(pyflink.__file__).resolve().parent / "conf"
ENVIRONMENT_DUMP = b'urn: "beam:env:process:v1"'
# Variables of the test process that would change where a run logs or how.
NOT_INHERITED = ("FLINK_CONF_DIR", "FLINK_LOG_DIR", "LOG4J_PROPERTIES", "JVM_ARGS")


@dataclass
class Secrets:
    clickhouse: str = field(default_factory=lambda: f"canary-ch-{uuid.uuid4().hex}")
    sasl: str = field(default_factory=lambda: f"canary-sasl-{uuid.uuid4().hex}")
    probe: str = field(default_factory=lambda: f"probe-{uuid.uuid4().hex}")

    @property
    def canaries(self) -> tuple[bytes, ...]:
        return (self.clickhouse.encode(), self.sasl.encode())

    def as_variables(self) -> dict[str, str]:
        return {"CLICKHOUSE_PASSWORD": self.clickhouse, "KAFKA_SASL_PASSWORD": self.sasl}

    def as_files(self, directory: Path) -> dict[str, str]:
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "CLICKHOUSE_PASSWORD_FILE": directory / "clickhouse_password",
            "KAFKA_SASL_PASSWORD_FILE": directory / "kafka_sasl_password",
        }
        files["CLICKHOUSE_PASSWORD_FILE"].write_text(self.clickhouse + "\n")
        files["KAFKA_SASL_PASSWORD_FILE"].write_text(self.sasl)
        return {name: str(path) for name, path in files.items()}


@dataclass
class Run:
    """What a run wrote, searched: ``leaks`` maps each file that held a canary at any time to
    the canaries found in it."""

    returncode: int
    work: Path
    leaks: dict[str, set[str]]
    worker_logs: set[str]
    files_searched: int

    @property
    def log_dir(self) -> Path:
        return self.work / "log"

    def jvm_log(self) -> bytes:
        logs = sorted(self.log_dir.glob("flink-*.log"))
        assert logs, f"no Flink JVM log in {self.log_dir}: {sorted(self.log_dir.iterdir())}"
        return b"".join(path.read_bytes() for path in logs)

    def output(self) -> str:
        return "\n".join(
            f"--- {name}\n{(self.work / name).read_text(errors='replace')[-4000:]}"
            for name in ("driver.stdout", "driver.stderr")
        )


def search(path: Path, canaries: Iterable[bytes], leaks: dict[str, set[str]], root: Path) -> None:
    try:
        data = path.read_bytes()
    except OSError:  # deleted or replaced while we looked (a worker's directory at its end)
        return
    found = {canary.decode() for canary in canaries if canary in data}
    if found:
        leaks.setdefault(str(path.relative_to(root)), set()).update(found)


def files_under(root: Path, suffix: str = "") -> list[Path]:
    """The files under ``root`` (ending in ``suffix``), skipping directories that vanish while
    we look: a running JVM deletes its temporary directories (``flink-dist-cache-*``) at will,
    and ``Path.rglob`` raises when one goes between listing and entering it."""
    return [
        Path(folder) / name
        for folder, _, names in os.walk(root)
        for name in names
        if name.endswith(suffix)
    ]


def read(path: Path) -> bytes:
    """``path``'s bytes, or none if it went away."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def run_job_searching(
    env: Mapping[str, str], work: Path, canaries: tuple[bytes, ...], timeout: float = 300
) -> Run:
    """Run the job bounded with its Flink logs and JVM temporary files under ``work`` (and its
    checkpoints: see :func:`environment`), searching the Python workers' logs while it runs and
    every file under ``work`` after."""
    log_dir, tmp_dir = work / "log", work / "tmp"
    log_dir.mkdir(parents=True)
    tmp_dir.mkdir()
    environ = {**env, "FLINK_LOG_DIR": str(log_dir), "JVM_ARGS": f"-Djava.io.tmpdir={tmp_dir}"}
    leaks: dict[str, set[str]] = {}
    worker_logs: set[str] = set()
    with (work / "driver.stdout").open("wb") as out, (work / "driver.stderr").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", MODULE, "--bounded"],
            env=environ,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        try:
            while process.poll() is None:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{MODULE} did not finish in {timeout:.0f} s")
                for log in files_under(tmp_dir, ".log"):
                    worker_logs.add(log.name)
                    search(log, canaries, leaks, work)
                time.sleep(0.2)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
    files = files_under(work)
    for path in files:
        search(path, canaries, leaks, work)
    return Run(process.returncode, work, leaks, worker_logs, len(files) + len(worker_logs))


def report_run(run: Run, secrets: str, outcome: str) -> None:
    """The run's figures for ``hatch run chaos``: what was searched, what was found."""
    report(
        "secrets",
        "movements",
        case=f"{secrets}, {outcome}",
        exit_code=run.returncode,
        files_searched=run.files_searched,
        secrets_found=sum(len(found) for found in run.leaks.values()),
    )


@pytest.fixture
def stream(kafka_bootstrap: str, new_topic: Callable[..., str]) -> dict[str, str]:
    """A small topic (one GPS ping, one malformed record) and its dead-letter topic."""
    topic = new_topic("sessions", partitions=1)
    produce(
        kafka_bootstrap,
        topic,
        [(SEED["session_id"].encode(), json.dumps(SEED).encode()), (None, b"{not json")],
    )
    return {
        "KAFKA_TOPIC": topic,
        "DEAD_LETTER_TOPIC": new_topic("dead-letter", partitions=1),
        "KAFKA_CONSUMER_GROUP": unique("no-secrets"),
    }


def environment(
    kafka_bootstrap: str, stream: Mapping[str, str], tmp_path: Path, secrets: Secrets, **extra: str
) -> dict[str, str]:
    """The run's environment: its store in ``tmp_path/store``, its checkpoints under the run
    directory ``tmp_path/run``, nothing inherited that would move its logs."""
    env = job_environment(
        kafka_bootstrap,
        stream["KAFKA_TOPIC"],
        tmp_path / "store",
        tmp_path / "run" / "checkpoints",
        DEAD_LETTER_TOPIC=stream["DEAD_LETTER_TOPIC"],
        KAFKA_CONSUMER_GROUP=stream["KAFKA_CONSUMER_GROUP"],
        JUPITER_LEAK_PROBE=secrets.probe,
        **extra,
    )
    return {k: v for k, v in env.items() if k not in NOT_INHERITED}


def refuse_inserts(store: Path) -> None:
    """Make every insert into ``session_movements`` in ``store`` fail: one part already, and at
    most one allowed."""
    client = clickhouse_connect.get_client(dsn=f"chdb://{store}")
    try:
        ensure_table(client, SESSION_MOVEMENTS, "default")
        write_rows(
            ClickHouseWriter(client, SESSION_MOVEMENTS, "default", RetryPolicy(0)),
            [
                (
                    str(uuid.uuid4()),
                    str(uuid.uuid4()),
                    str(uuid.uuid4()),
                    0,
                    "en_route",
                    1.0,
                    1.0,
                    99,
                    0,
                )
            ],
        )
        client.command(
            f"ALTER TABLE {SESSION_MOVEMENTS.qualified('default')} MODIFY SETTING"
            " parts_to_throw_insert = 1, parts_to_delay_insert = 1"
        )
    finally:
        client.close()


def stock_log_configuration() -> dict[str, str]:
    """PyFlink's own configuration directory, whose log configuration keeps Beam's environment
    dump: the secrets must be missing from it because they are missing from the environment."""
    return {"FLINK_CONF_DIR": str(PYFLINK_CONF)}


def test_secrets_in_variables_are_not_in_the_environment_flink_logs(
    kafka_bootstrap: str, stream: dict[str, str], tmp_path: Path
) -> None:
    secrets = Secrets()
    env = environment(kafka_bootstrap, stream, tmp_path, secrets, **secrets.as_variables())
    env.update(stock_log_configuration())

    run = run_job_searching(env, tmp_path / "run", secrets.canaries)
    report_run(run, "variables", "succeeds")

    assert run.returncode == 0, run.output()
    assert run.leaks == {}, f"canaries found in {run.leaks}"
    assert query(tmp_path / "store", "SELECT count() FROM session_movements") == [(1,)]
    jvm_log = run.jvm_log()
    # Not vacuous: the environment dump is there, with the probe variable, without the secrets.
    assert ENVIRONMENT_DUMP in jvm_log and secrets.probe.encode() in jvm_log
    assert "flink-python-udf-boot.log" in run.worker_logs
    stderr = (run.work / "driver.stderr").read_text()
    assert "removed CLICKHOUSE_PASSWORD, KAFKA_SASL_PASSWORD from the environment" in stderr


def test_secrets_in_files_reach_no_log_and_jupiter_silences_the_environment_dump(
    kafka_bootstrap: str, stream: dict[str, str], tmp_path: Path
) -> None:
    secrets = Secrets()
    files = secrets.as_files(tmp_path / "secrets")  # outside the searched run directory
    env = environment(kafka_bootstrap, stream, tmp_path, secrets, **files)

    shown = subprocess.run(
        [sys.executable, "-m", MODULE, "--print-settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    printed = json.loads(shown.stdout)
    assert printed["CLICKHOUSE_PASSWORD"] == printed["KAFKA_SASL_PASSWORD"] == "***"
    assert not any(s in shown.stdout + shown.stderr for s in (secrets.clickhouse, secrets.sasl))

    run = run_job_searching(env, tmp_path / "run", secrets.canaries)
    report_run(run, "files", "succeeds")

    assert run.returncode == 0, run.output()
    assert run.leaks == {}, f"canaries found in {run.leaks}"
    assert query(tmp_path / "store", "SELECT count() FROM session_movements") == [(1,)]
    # Jupiter's log configuration (the default for an in-process run) drops the dump whole.
    jvm_log = run.jvm_log()
    assert b"Checkpoint" in jvm_log, "the JVM log is Flink's, and it has content"
    assert ENVIRONMENT_DUMP not in jvm_log
    assert not [path for path in files_under(run.work) if secrets.probe.encode() in read(path)]
    assert "flink-python-udf-boot.log" in run.worker_logs


def test_a_failing_run_leaks_no_secret(
    kafka_bootstrap: str, stream: dict[str, str], tmp_path: Path
) -> None:
    """Every insert fails (a real TOO_MANY_PARTS: the table already holds a part and may hold
    only one), so Flink restarts the job twice and gives up, and Beam logs the environment at
    every worker shutdown, WARN with stack traces included."""
    secrets = Secrets()
    env = environment(
        kafka_bootstrap, stream, tmp_path, secrets, SINK_MAX_RETRIES="0", **secrets.as_variables()
    )
    env.update(stock_log_configuration())
    refuse_inserts(tmp_path / "store")

    run = run_job_searching(env, tmp_path / "run", secrets.canaries)
    report_run(run, "variables", "fails")

    assert run.returncode != 0, run.output()
    assert "TOO_MANY_PARTS" in (run.work / "driver.stderr").read_text(), run.output()
    assert run.leaks == {}, f"canaries found in {run.leaks}"
    jvm_log = run.jvm_log()
    assert jvm_log.count(ENVIRONMENT_DUMP) >= 3, "each attempt's workers dump their environment"
    assert b"Error cleaning up servers" in jvm_log
    assert secrets.probe.encode() in jvm_log
