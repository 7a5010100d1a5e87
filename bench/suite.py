"""
The benchmarks.  Each function runs one benchmark and returns its figures
as a JSON-ready dict; L{Sizes} contains the sizes of a full or a quick run.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import references
from bench.procs import LoadProcess, Meter, descendants, rssBytes, runLoad
from bench.server import MrsServer

#: Bytes per access unit: about 4 and 2 Mbit/s at 25 frames per second.
FRAME_4M = 20_000
FRAME_2M = 10_000


@dataclass
class Sizes:
    runs: int = 3
    fanout: tuple[int, ...] = (1, 10, 50, 100)
    fanoutSeconds: float = 10.0
    bulk: tuple[int, ...] = (10, 50)
    bulkSeconds: float = 6.0
    devices: int = 200
    devicesSeconds: float = 20.0
    idle: int = 10_000
    idleSeconds: float = 10.0
    handshakeSeconds: float = 4.0
    slowSeconds: float = 60.0
    adminDevices: int = 1000
    adminRequests: int = 200
    references: bool = True


QUICK = Sizes(runs=1, fanout=(1, 10), fanoutSeconds=3.0, bulk=(10,), bulkSeconds=2.0,
              devices=20, devicesSeconds=3.0, idle=300, idleSeconds=2.0,
              handshakeSeconds=2.0, slowSeconds=5.0, adminDevices=100, adminRequests=20,
              references=False)


def summary(values: list[float]) -> dict[str, float]:
    """
    Median, min and max of C{values}.
    """
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def split(count: int, parts: int) -> list[tuple[int, int]]:
    """
    Split C{count} items into up to C{parts} (first, count) ranges.
    """
    parts = max(1, min(parts, count))
    size, extra = divmod(count, parts)
    ranges, first = [], 0
    for i in range(parts):
        n = size + (1 if i < extra else 0)
        ranges.append((first, n))
        first += n
    return ranges


def relayRun(server: MrsServer, token: str, devices: int, monitorsPerDevice: int,
             frameSize: int, paced: bool, seconds: float,
             monitorProcesses: int = 1, stall: bool = False,
             sample: Callable[[float], None] | None = None) -> dict[str, Any]:
    """
    Stream from C{devices} devices to C{monitorsPerDevice} monitors each for
    C{seconds}; return the server's CPU and the monitors' counts.  Every
    0.5 s, C{sample} gets the seconds since the monitors started.
    """
    deviceProcess = LoadProcess("devices", server.spec(
        first=0, count=devices, prefix="cam-", secret="bench-secret",
        frameSize=frameSize, paced=paced))
    processes = [deviceProcess]
    try:
        deviceProcess.waitReady()
        watch = [[f"cam-{d}"] for d in range(devices) for _ in range(monitorsPerDevice)]
        monitors = []
        for index, (first, count) in enumerate(split(len(watch), monitorProcesses)):
            process = LoadProcess("monitors", server.spec(
                user=server.viewer[0], token=token, watch=watch[first:first + count],
                stall=stall and index == 0))
            processes.append(process)
            monitors.append(process)
        for process in monitors:
            process.waitReady()
        meter = Meter([server.pid])
        rssBefore = rssBytes([server.pid])
        peak = rssBefore
        meter.start()
        for process in monitors:
            process.command("go")
        deviceProcess.command("go")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            peak = max(peak, rssBytes([server.pid]))
            if sample is not None:
                sample(time.monotonic() - meter.began)
        sent = deviceProcess.finish()
        time.sleep(0.5)
        received = [process.finish() for process in monitors]
        meter.stop()
        byteCount = sum(r["bytes"] for r in received)
        latencies = [r["latencyMs"] for r in received if r["latencyMs"]["count"]]
        return {
            "cpu": meter.cpu, "wall": meter.wall, "share": meter.share,
            "bytes": byteCount, "framesSent": sent["framesSent"],
            "framesReceived": sum(r["frames"] for r in received),
            "gaps": sum(r["gaps"] for r in received),
            "closed": sum(r["closed"] for r in received),
            "stalledClosed": any(r["stalledClosed"] for r in received),
            "sentMbitPerDevice": sent["bytesSent"] * 8 / sent["seconds"] / devices / 1e6,
            "cpuPerGB": meter.cpu / (byteCount / 1e9) if byteCount else float("inf"),
            "rssBefore": rssBefore, "rssPeak": peak,
            "latencyMs": {
                "p50": max((lat["p50"] for lat in latencies), default=0.0),
                "p99": max((lat["p99"] for lat in latencies), default=0.0),
                "max": max((lat["max"] for lat in latencies), default=0.0)},
        }
    finally:
        for process in processes:
            process.kill()


def startServer(name: str, **kwargs: Any) -> tuple[MrsServer, str]:
    server = MrsServer(references.tempRoot(name), **kwargs)
    server.start()
    token = runLoad("token", server.spec(user=server.viewer[0],
                                         password=server.viewer[1]))["token"]
    return server, token


def fanout(sizes: Sizes) -> dict[str, Any]:
    """
    Benchmarks 1 and 2: one device, N monitors, paced at 4 Mbit/s and bulk.
    """
    server, token = startServer("fanout", devices=2)
    results: dict[str, Any] = {"paced": {}, "bulk": {}}
    try:
        for n in sizes.fanout:
            runs = [relayRun(server, token, 1, n, FRAME_4M, True, sizes.fanoutSeconds,
                             monitorProcesses=1 if n < 50 else 2)
                    for _ in range(sizes.runs)]
            results["paced"][str(n)] = {
                "cpuPerGB": summary([r["cpuPerGB"] for r in runs]),
                "share": summary([r["share"] for r in runs]),
                "gaps": sum(r["gaps"] for r in runs),
                "mbitPerMonitor": summary([r["bytes"] * 8 / r["wall"] / n / 1e6 for r in runs]),
                "latencyP99Ms": summary([r["latencyMs"]["p99"] for r in runs]),
            }
        for n in sizes.bulk:
            runs = [relayRun(server, token, 1, n, FRAME_4M, False, sizes.bulkSeconds,
                             monitorProcesses=1)
                    for _ in range(sizes.runs)]
            results["bulk"][str(n)] = {
                "cpuPerGB": summary([r["cpuPerGB"] for r in runs]),
                "share": summary([r["share"] for r in runs]),
                "deliveredMBps": summary([r["bytes"] / r["wall"] / 1e6 for r in runs]),
                "MBpsPerCore": summary([r["bytes"] / 1e6 / r["cpu"] for r in runs]),
            }
    finally:
        server.stop()
    return results


def peerFanout(sizes: Sizes, key: str, cert: str) -> dict[str, Any]:
    """
    node-media-server at the same N: ffmpeg -re RTMPS in, HTTPS-FLV out.
    """
    root = references.tempRoot("nms")
    seconds = len(sizes.fanout) * sizes.runs * (sizes.fanoutSeconds + 5) + 30
    h264 = references.paddedFile(root / "padded.h264", FRAME_4M, seconds)
    nms = references.NodeMediaServer(root / "nms", key, cert, h264)
    results: dict[str, Any] = {}
    try:
        for n in sizes.fanout:
            values, rates = [], []
            for _ in range(sizes.runs):
                viewers = LoadProcess("flv", {"host": "127.0.0.1", "port": nms.httpsPort,
                                              "ca": cert, "count": n,
                                              "path": "/live/bench.flv"})
                try:
                    viewers.waitReady()
                    # node runs its libuv and V8 worker threads as tasks of one
                    # process; descendants() also catches any child process.
                    meter = Meter(descendants(nms.pid))
                    meter.start()
                    viewers.command("go")
                    time.sleep(sizes.fanoutSeconds)
                    result = viewers.finish()
                    meter.stop()
                finally:
                    viewers.kill()
                values.append(meter.cpu / (result["bytes"] / 1e9))
                rates.append(result["bytes"] * 8 / result["seconds"] / n / 1e6)
            results[str(n)] = {"cpuPerGB": summary(values), "mbitPerViewer": summary(rates)}
    finally:
        nms.stop()
        shutil.rmtree(root, ignore_errors=True)
    return results


def manyDevices(sizes: Sizes) -> dict[str, Any]:
    """
    Benchmark 3: devices at 2 Mbit/s, each watched by two monitors.
    """
    server, token = startServer("devices", devices=sizes.devices)
    try:
        runs = [relayRun(server, token, sizes.devices, 2, FRAME_2M, True,
                         sizes.devicesSeconds, monitorProcesses=2)
                for _ in range(sizes.runs)]
    finally:
        server.stop()
    return {
        "devices": sizes.devices,
        "share": summary([r["share"] for r in runs]),
        "dropped": sum(r["gaps"] for r in runs),
        "missing": sum(max(0, 2 * r["framesSent"] - r["framesReceived"]) for r in runs),
        "latencyP50Ms": summary([r["latencyMs"]["p50"] for r in runs]),
        "latencyP99Ms": summary([r["latencyMs"]["p99"] for r in runs]),
        "latencyMaxMs": summary([r["latencyMs"]["max"] for r in runs]),
        "mbitPerDevice": summary([r["sentMbitPerDevice"] for r in runs]),
    }


def holdIdle(spec: dict[str, Any], count: int, pids: Callable[[], list[int]],
             sizes: Sizes) -> dict[str, Any]:
    before = rssBytes(pids())
    processes = [LoadProcess("idle", {**spec, "count": n}) for _, n in split(count, 2)]
    try:
        for process in processes:
            process.waitReady()
        time.sleep(1.0)
        after = rssBytes(pids())
        shares = []
        for _ in range(sizes.runs):
            meter = Meter(pids())
            meter.start()
            time.sleep(sizes.idleSeconds)
            meter.stop()
            shares.append(meter.share)
        held = rssBytes(pids())
        results = [process.finish() for process in processes]
    finally:
        for process in processes:
            process.kill()
    connected = sum(r["alive"] for r in results)
    return {"connections": connected, "rssBefore": before, "rssAfter": held,
            "bytesPerConnection": (max(after, held) - before) / max(1, connected),
            "share": summary(shares)}


def idle(sizes: Sizes) -> dict[str, Any]:
    """
    Benchmark 4: idle logged-in TLS monitors, beside nginx.
    """
    server, token = startServer("idle", devices=1)
    results: dict[str, Any] = {}
    try:
        results["mrs"] = holdIdle(server.spec(user=server.viewer[0], token=token),
                                  sizes.idle, lambda: [server.pid], sizes)
        if sizes.references:
            nginx = references.Nginx(references.tempRoot("nginx-idle"), server.key, server.ca)
            try:
                results["nginx"] = holdIdle(
                    {"host": "127.0.0.1", "port": nginx.port, "ca": server.ca, "http": True},
                    sizes.idle, nginx.workerPids, sizes)
            finally:
                nginx.stop()
    finally:
        server.stop()
    return results


def handshakes(sizes: Sizes) -> dict[str, Any]:
    """
    Benchmark 5: full TLS handshakes per server core-second, RSA-2048 and
    ECDSA P-256, beside nginx with the same key and certificate.
    """
    results: dict[str, Any] = {}
    for keyType, label in (("rsa2048", "rsa2048"), ("ec-p256", "ecdsa-p256")):
        server, _ = startServer(f"handshake-{keyType}", keyType=keyType)
        try:
            rates = [references.handshakeRate(server.tlsPort, sizes.handshakeSeconds,
                                              [server.pid]) for _ in range(sizes.runs)]
            results[f"mrs {label}"] = {"perCoreSecond": summary([r[0] for r in rates]),
                                       "share": summary([r[1] for r in rates])}
            if sizes.references:
                nginx = references.Nginx(references.tempRoot("nginx-hs"), server.key, server.ca)
                try:
                    rates = [references.handshakeRate(nginx.port, sizes.handshakeSeconds,
                                                      nginx.workerPids())
                             for _ in range(sizes.runs)]
                finally:
                    nginx.stop()
                results[f"nginx {label}"] = {"perCoreSecond": summary([r[0] for r in rates]),
                                             "share": summary([r[1] for r in rates])}
        finally:
            server.stop()
    return results


#: Parts of the server's log messages (C{mrs.server.session}) when it
#: disconnects a monitor for not reading, and for sending nothing, which a
#: monitor that stopped reading also does.
STALL_MESSAGES = {"congested": "has not read for", "idle": "sent nothing for"}


def serverDisconnects(logPath: Path) -> dict[str, int]:
    """
    Count the server's stalled and idle disconnects in its log.
    """
    counts = dict.fromkeys(STALL_MESSAGES, 0)
    try:
        text = logPath.read_text(errors="replace")
    except OSError:
        return counts
    for line in text.splitlines():
        for reason, message in STALL_MESSAGES.items():
            if message in line:
                counts[reason] += 1
    return counts


def slowMonitor(sizes: Sizes) -> dict[str, Any]:
    """
    Benchmark 6: one of ten monitors stops reading during a 4 Mbit/s
    stream.  The stalled client never sees the server's close, because it
    does not read, so the disconnect is taken from the server's log.
    """
    server, token = startServer("slow", devices=1)
    before = serverDisconnects(server.logPath)
    seen: dict[str, float] = {}

    def watchLog(elapsed: float) -> None:
        counts = serverDisconnects(server.logPath)
        for reason, count in counts.items():
            if count > before[reason] and reason not in seen:
                seen[reason] = elapsed

    try:
        run = relayRun(server, token, 1, 10, FRAME_4M, True, sizes.slowSeconds, stall=True,
                       sample=watchLog)
        time.sleep(0.5)
        after = serverDisconnects(server.logPath)
    finally:
        server.stop()
    first = min(seen.items(), key=lambda item: item[1]) if seen else None
    return {"seconds": sizes.slowSeconds, "rssGrowth": run["rssPeak"] - run["rssBefore"],
            "rssBefore": run["rssBefore"], "rssPeak": run["rssPeak"],
            "droppedOthers": run["gaps"], "othersClosed": run["closed"],
            "serverDisconnects": {reason: after[reason] - before[reason] for reason in after},
            "stalledDisconnected": first is not None,
            "disconnectReason": first[0] if first else None,
            "secondsToDisconnect": first[1] if first else None}


def admin(sizes: Sizes) -> dict[str, Any]:
    """
    Benchmark 7: dashboard and API list latency with many devices stored.
    """
    server, _ = startServer("admin", devices=sizes.adminDevices)
    try:
        runs = [runLoad("admin", {"host": "127.0.0.1", "port": server.adminPort,
                                  "ca": server.ca, "user": server.admin[0],
                                  "password": server.admin[1], "token": server.apiToken,
                                  "requests": sizes.adminRequests})
                for _ in range(sizes.runs)]
    finally:
        server.stop()
    return {"devices": sizes.adminDevices,
            **{page: {"p50Ms": summary([r[page]["p50"] for r in runs]),
                      "p99Ms": summary([r[page]["p99"] for r in runs]),
                      "bytes": runs[0][page]["bytes"]}
               for page in runs[0]}}


def limit(sizes: Sizes, key: str, cert: str) -> dict[str, Any]:
    """
    Measure the limit: AES-GCM speed of one core, nginx sending and socat
    receiving over TLS, in CPU seconds per GB.
    """
    size = 1_000_000_000
    root = references.tempRoot("limit")
    return {
        "aes-256-gcm": summary([1e9 / references.opensslSpeed("aes-256-gcm")
                                for _ in range(sizes.runs)]),
        "aes-128-gcm": summary([1e9 / references.opensslSpeed("aes-128-gcm")
                                for _ in range(sizes.runs)]),
        "nginx send": summary([references.nginxSendCost(root / f"nginx{i}", key, cert, size)
                               for i in range(sizes.runs)]),
        "socat receive": summary([references.socatReceiveCost(root / "socat", key, cert, size)
                                  for _ in range(sizes.runs)]),
    }


def certificatePair() -> tuple[MrsServer, str, str]:
    """
    Start and stop a server, so that the references can use its RSA key and
    certificate.
    """
    server = MrsServer(references.tempRoot("pair"))
    server.start()
    server.stop()
    return server, server.key, server.ca


BENCHMARKS = ("fanout", "devices", "idle", "handshakes", "slow", "admin")


def runAll(sizes: Sizes, only: set[str] | None = None,
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """
    Run the benchmarks (all, or those in C{only}) and the references.
    """
    results: dict[str, Any] = {}
    _, key, cert = certificatePair()
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("fanout", lambda: fanout(sizes)),
        ("devices", lambda: manyDevices(sizes)),
        ("idle", lambda: idle(sizes)),
        ("handshakes", lambda: handshakes(sizes)),
        ("slow", lambda: slowMonitor(sizes)),
        ("admin", lambda: admin(sizes)),
    ]
    if sizes.references:
        steps.insert(0, ("limit", lambda: limit(sizes, key, cert)))
        steps.insert(2, ("peer", lambda: peerFanout(sizes, key, cert)))
    for name, step in steps:
        if only and name not in only:
            continue
        began = time.monotonic()
        log(f"running {name} ...")
        try:
            results[name] = step()
        except Exception as error:  # noqa: BLE001 - one failure must not lose the rest
            results[name] = {"error": f"{type(error).__name__}: {error}"}
        log(f"  {name} took {time.monotonic() - began:.0f} s")
    return results
