"""Process and port helpers the local tools share: is a pid alive, wait for a condition with a
deadline, stop a process (SIGTERM, then SIGKILL), is a port open or free, pick free ports."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

HOST: Final = "127.0.0.1"
POLL_INTERVAL_S: Final = 0.25


def process_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (reaping it if it is our child)."""
    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    except ChildProcessError:
        pass  # not our child: fall through to the /proc check
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def wait_for(condition: Callable[[], bool], timeout: float, poll: float = POLL_INTERVAL_S) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def terminate(pid: int, timeout: float = 30.0) -> bool:
    """SIGTERM ``pid`` and wait ``timeout`` seconds for it to end, then SIGKILL it. True when
    it has ended; False only if it survived SIGKILL for 10 s."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if wait_for(lambda: not process_alive(pid), timeout):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return wait_for(lambda: not process_alive(pid), 10.0)


def port_open(port: int, host: str = HOST) -> bool:
    """Something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def port_bindable(port: int, host: str = HOST) -> bool:
    """``host:port`` can be bound now (nothing holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(*preferred: int, host: str = HOST) -> list[int]:
    """``preferred`` where free on ``host``, else ports the kernel picks; all distinct."""
    held: list[socket.socket] = []  # open until the end, so the kernel never picks one twice
    ports: list[int] = []
    try:
        for want in preferred:
            port = want
            if port in ports or port_open(port, host) or not port_bindable(port, host):
                port = 0
            while port in (0, *ports):
                sock = socket.socket()
                held.append(sock)
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            ports.append(port)
        return ports
    finally:
        for sock in held:
            sock.close()


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, headed by its path, for error messages."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"--- {path}: (missing)"
    return f"--- last {lines} lines of {path}:\n" + "\n".join(content[-lines:])
