"""
Profile the server under load with py-spy: C{python -m bench.profile
fanout [N] [SECONDS]} streams one 4 Mbit/s device to N monitors (default
50); C{python -m bench.profile devices [N] [SECONDS]} streams N devices
(default 200) at 2 Mbit/s to two monitors each; C{python -m bench.profile
handshakes [ec-p256|rsa2048] [SECONDS]} runs two C{openssl s_time -new}
loops against a server with that key type.  It records the server's
threads with py-spy while they run (idle samples, such as waiting in
epoll, are left out) and prints the functions with the most samples, by
own time and by total time.  The raw samples and a flame graph stay in the
server's temporary directory.  Needs py-spy (C{pip install py-spy}) and the
right to trace the server (root, or ptrace_scope 0).
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench.procs import BIN
from bench.references import handshakeRate
from bench.suite import FRAME_2M, FRAME_4M, relayRun, startServer


def frameName(frame: str) -> str:
    """
    Drop the line number from a py-spy frame, C{"name (path:line)"}, and
    shorten the path to start at the package.
    """
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


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
        frames = [frameName(frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{samples} samples", "own time:"]
    lines += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("total time:")
    lines += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)


def record(pyspy: str, pid: int, seconds: float, output: Path, kind: str) -> None:
    subprocess.run([pyspy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                    "--rate", "1000", "--format", kind, "--output", str(output),
                    "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else "fanout"
    defaults = {"fanout": "50", "devices": "200", "handshakes": "ec-p256"}
    if mode not in defaults:
        raise SystemExit(f"unknown mode {mode!r}: use fanout, devices or handshakes")
    size = argv[1] if len(argv) > 1 else defaults[mode]
    seconds = float(argv[2]) if len(argv) > 2 else 15.0
    pyspy = shutil.which("py-spy") or str(BIN / "py-spy")
    if mode == "handshakes":
        server, token = startServer("profile", keyType=size)
    else:
        server, token = startServer("profile", devices=1 if mode == "fanout" else int(size))
    raw = server.root / "profile.txt"
    svg = server.root / "profile.svg"
    # Two recorders, because py-spy writes one format a run.
    recorders = [threading.Thread(target=record, args=(pyspy, server.pid, seconds, path, kind))
                 for path, kind in ((raw, "raw"), (svg, "flamegraph"))]
    started: list[float] = []

    def startRecording(elapsed: float = 0.0) -> None:
        # Record once the media flows, leaving out the clients' TLS
        # handshakes and logins.
        if not started:
            started.append(elapsed)
            for recorder in recorders:
                recorder.start()

    try:
        if mode == "fanout":
            run = relayRun(server, token, 1, int(size), FRAME_4M, True, seconds + 1.5,
                           monitorProcesses=1 if int(size) < 50 else 2, sample=startRecording)
            figure = f"{run['cpuPerGB']:.2f} CPU s per GB, core share {run['share']:.3f}"
        elif mode == "devices":
            run = relayRun(server, token, int(size), 2, FRAME_2M, True, seconds + 1.5,
                           monitorProcesses=2, sample=startRecording)
            figure = f"{run['cpuPerGB']:.2f} CPU s per GB, core share {run['share']:.3f}"
        else:
            startRecording()
            rate, share = handshakeRate(server.tlsPort, seconds, [server.pid])
            figure = f"{rate:.0f} handshakes per core-second, core share {share:.3f}"
        for recorder in recorders:
            recorder.join()
    finally:
        server.stop()
    print(f"{mode} {size}: {figure} (with py-spy's sampling overhead)")
    print(f"flame graph: {svg}")
    print(summarize(raw))


if __name__ == "__main__":
    main(sys.argv[1:])
