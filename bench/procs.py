"""
Processes under measurement: CPU time and memory read from /proc, free
ports, load generator processes and the machine's description.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def raiseFileLimit() -> int:
    """
    Raise this process's open-file limit to its hard limit, so that the
    processes it starts inherit it; return the limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def freePort() -> int:
    """
    Pick a port on 127.0.0.1 that nothing listens on now.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """
    Return C{pid} and every process below it.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpuSeconds(pids: list[int]) -> float:
    """
    CPU time of every thread of C{pids}, in seconds: the sum of the first
    field of /proc/PID/task/*/schedstat (nanoseconds on the CPU).
    """
    total = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def rssBytes(pids: list[int]) -> int:
    """
    Sum of VmRSS of C{pids}, in bytes.
    """
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class Meter:
    """
    CPU seconds and wall time of a set of processes between L{start} and
    L{stop}.
    """

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.cpu = 0.0
        self.wall = 0.0
        #: C{time.monotonic()} at L{start}.
        self.began = 0.0

    def start(self) -> None:
        self._cpu = cpuSeconds(self.pids)
        self.began = time.monotonic()

    def stop(self) -> None:
        self.cpu = cpuSeconds(self.pids) - self._cpu
        self.wall = time.monotonic() - self.began

    @property
    def share(self) -> float:
        """
        CPU time over wall time: 1.0 is one core busy.
        """
        return self.cpu / self.wall if self.wall else 0.0


class LoadProcess:
    """
    One C{python -m bench.loadgen} process, driven over its standard input
    and output (see L{bench.loadgen}).
    """

    def __init__(self, mode: str, spec: dict[str, Any]) -> None:
        self.mode = mode
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen", mode, json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=Path(__file__).parent.parent)
        self.result: dict[str, Any] | None = None

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise RuntimeError(f"load generator {self.mode} exited with status {code} "
                               "before answering; its error is above")
        return line.strip()

    def waitReady(self) -> None:
        while True:
            line = self._line()
            if line == "ready":
                return
            if line.startswith("result "):
                self.result = json.loads(line[7:])
                return

    def command(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()

    def finish(self) -> dict[str, Any]:
        if self.result is None:
            self.command("stop")
            while self.result is None:
                line = self._line()
                if line.startswith("result "):
                    self.result = json.loads(line[7:])
        self.process.wait(timeout=60)
        return self.result

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def runLoad(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    """
    Run a load generator that needs no go or stop, and return its result.
    """
    process = LoadProcess(mode, spec)
    try:
        process.waitReady()
        return process.finish()
    finally:
        process.kill()


def commandVersion(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def socatVersion() -> str:
    try:
        out = subprocess.run(["socat", "-V"], capture_output=True, text=True, timeout=20)
    except OSError:
        return "not installed"
    lines = [line for line in out.stdout.splitlines() if line.startswith("socat version")]
    return lines[0] if lines else "unknown"


def machine() -> dict[str, Any]:
    """
    Describe this machine and the software under test.
    """
    import OpenSSL
    from cryptography.hazmat.backends.openssl import backend

    import twisted

    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "pyopenssl": OpenSSL.__version__,
        "openssl (server, via cryptography)": backend.openssl_version_text(),
        "openssl (command)": commandVersion(["openssl", "version"]),
        "nginx": commandVersion(["nginx", "-v"]),
        "socat": socatVersion(),
        "node": commandVersion(["node", "--version"]),
        "ffmpeg": commandVersion(["ffmpeg", "-version"]),
        "memory": Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip(),
    }
