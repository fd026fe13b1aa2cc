"""Real servers the integration tests start on 127.0.0.1: a free port, and a process that is
up (its health URL answers 200) until the test is done with it."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(
    command: list[str],
    health: str,
    log: Path,
    *,
    startup_s: float = 60.0,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[None]:
    """command running, its output in log, from when `health` answers 200 until exit; a
    server that exits or is not up within startup_s fails the test with its log's end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_s
        while not _answers(health):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{Path(command[0]).name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False
