"""
Profile the server during a fan-out: C{python -m bench.profile [N]
[SECONDS]} streams one 4 Mbit/s device to N monitors (default 50) and
records the server with py-spy, then prints the functions with the most
samples, by own time and by total time.  Needs py-spy (C{pip install
py-spy}) and the right to trace the server (root, or ptrace_scope 0).
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench.procs import BIN
from bench.suite import FRAME_4M, relayRun, startServer


def summarize(collapsed: Path, top: int = 25) -> str:
    """
    Own and total sample counts per function from py-spy's raw output.
    """
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{samples} samples", "own time:"]
    lines += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("total time:")
    lines += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    monitors = int(argv[0]) if argv else 50
    seconds = float(argv[1]) if len(argv) > 1 else 15.0
    pyspy = shutil.which("py-spy") or str(BIN / "py-spy")
    server, token = startServer("profile", devices=1)
    output = server.root / "profile.txt"
    try:
        recorder = threading.Thread(target=subprocess.run, args=(
            [pyspy, "record", "--pid", str(server.pid), "--duration", str(int(seconds)),
             "--rate", "250", "--format", "raw", "--output", str(output), "--nonblocking"],),
            kwargs={"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL})
        recorder.start()
        run = relayRun(server, token, 1, monitors, FRAME_4M, True, seconds + 1,
                       monitorProcesses=1 if monitors < 50 else 2)
        recorder.join()
    finally:
        server.stop()
    print(f"fan-out {monitors}: {run['cpuPerGB']:.2f} CPU s per GB, "
          f"core share {run['share']:.3f}")
    print(summarize(output))


if __name__ == "__main__":
    main(sys.argv[1:])
