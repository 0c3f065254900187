"""Progress bars of the producer, the bench and the demo (jupiter_local.progress): drawn with
count, rate and ETA on a terminal, nothing at all when stdout is not one. No timing is asserted:
only whether a bar is there and what it names."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable

from rich.console import Console

from jupiter_local.progress import progress_bar

# Variables with which rich treats any stream as a terminal (or none): not from the test's caller.
RICH_OVERRIDES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "TERM")


def test_not_a_terminal_draws_nothing() -> None:
    out = io.StringIO()
    with progress_bar("producing", 10, console=Console(file=out)) as bar:
        for done in range(11):
            bar(done)
        bar.update(note="checkpoint 1 completed")
    assert not bar.active
    assert out.getvalue() == ""


def test_a_terminal_gets_a_bar_with_count_rate_and_eta() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with progress_bar("producing", 10, console=console) as bar:
        for done in range(11):
            bar(done)
    assert bar.active
    text = out.getvalue()
    assert "producing" in text
    assert "10/10" in text
    assert "msg/s" in text
    assert "ETA" in text


def test_an_open_ended_run_shows_its_note_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with progress_bar("movements-job", None, console=console) as bar:
        bar.update(note="checkpoint 3 completed")
    assert "movements-job" in out.getvalue()
    assert "checkpoint 3 completed" in out.getvalue()


def _producer(bootstrap: str, topic: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupiter_local.producer",
        *("--bootstrap", bootstrap, "--topic", topic, "--sessions", "20", "--pings", "5"),
    ]


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in RICH_OVERRIDES} | {"TERM": "xterm"}


def _read_pty(fd: int, done: Callable[[], bool], deadline: float) -> bytes:
    """Everything written to the terminal until the process ends (and the terminal is drained)."""
    out = bytearray()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            out += chunk
        elif done():
            break
    return bytes(out)


def test_the_producer_draws_a_bar_on_a_terminal_and_none_into_a_pipe(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("progress")
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            _producer(kafka_bootstrap, topic), stdout=slave, stderr=slave, env=_environment()
        )
        os.close(slave)
        terminal = _read_pty(master, lambda: process.poll() is not None, time.monotonic() + 120)
        assert process.wait(timeout=30) == 0, terminal.decode(errors="replace")
    finally:
        os.close(master)
    shown = terminal.decode(errors="replace")
    assert "producing" in shown
    assert "msg/s" in shown

    piped = subprocess.run(
        _producer(kafka_bootstrap, topic),
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=120,
        check=True,
    )
    assert "msg/s" not in piped.stdout
    assert "\x1b[" not in piped.stdout
    assert piped.stdout.startswith("produced ")
    assert piped.stdout.count("\n") == 1
