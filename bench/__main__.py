"""
Run the benchmark suite: C{python -m bench} (everything, with the
references) or C{python -m bench --quick} (our server only, small sizes).
Results go to C{bench/results/RUN.json} and a table on standard output.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import references
from bench.procs import machine, raiseFileLimit
from bench.suite import BENCHMARKS, QUICK, Sizes, runAll

RESULTS = Path(__file__).parent / "results"


def med(value: Any) -> str:
    if not isinstance(value, dict) or "median" not in value:
        return "-"
    return f"{value['median']:.3g} ({value['min']:.3g}-{value['max']:.3g})"


def ratio(a: Any, b: Any) -> float | None:
    try:
        return float(a["median"]) / float(b["median"])
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """
    Return each target with the measured figure and whether it was met
    (None when it was not measured).
    """
    out: list[tuple[str, str, bool | None]] = []
    paced = results.get("fanout", {}).get("paced", {})
    peer = results.get("peer", {})
    for n, bound in (("50", 0.8), ("10", 0.9)):
        r = ratio(paced.get(n, {}).get("cpuPerGB"), peer.get(n, {}).get("cpuPerGB"))
        out.append((f"fan-out {n}: CPU/GB <= {bound}x node-media-server",
                    f"{r:.2f}x" if r is not None else "not measured",
                    None if r is None else r <= bound))
    one = paced.get("1", {}).get("share")
    out.append(("one 4 Mbit/s stream to one monitor < 1.5% of a core",
                f"{one['median'] * 100:.2f}%" if one else "not measured",
                None if not one else one["median"] < 0.015))
    devices = results.get("devices", {})
    if "latencyP99Ms" in devices:
        ok = devices["latencyP99Ms"]["median"] < 20 and devices["dropped"] == 0
        out.append((f"relay p99 < 20 ms at {devices['devices']} devices x 2, no drop",
                    f"p99 {devices['latencyP99Ms']['median']:.1f} ms, "
                    f"{devices['dropped']} dropped", ok))
    idle = results.get("idle", {}).get("mrs")
    if idle:
        per = idle["bytesPerConnection"] / 1024
        out.append((f"<= 32 KiB RSS per idle TLS connection ({idle['connections']})",
                    f"{per:.1f} KiB", per <= 32))
    slow = results.get("slow", {})
    if "rssGrowth" in slow:
        growth = slow["rssGrowth"] / 2**20
        out.append(("slow monitor: RSS growth < 16 MiB, no drop for the others",
                    f"{growth:.1f} MiB, {slow['droppedOthers']} dropped",
                    growth < 16 and slow["droppedOthers"] == 0))
    hs = results.get("handshakes", {})
    for label in ("ecdsa-p256", "rsa2048"):
        r = ratio(hs.get(f"mrs {label}", {}).get("perCoreSecond"),
                  hs.get(f"nginx {label}", {}).get("perCoreSecond"))
        out.append((f"handshakes/core-s {label} >= 0.5x nginx",
                    f"{r:.2f}x" if r is not None else "not measured",
                    None if r is None else r >= 0.5))
    return out


def table(results: dict[str, Any]) -> str:
    """
    Format the results as text: medians with (min-max) over the runs.
    """
    lines: list[str] = []
    add = lines.append
    limit = results.get("limit", {})
    if limit and "error" not in limit:
        add("Limit (CPU s per GB)")
        for name, value in limit.items():
            add(f"  {name:<28} {med(value)}")
    fan = results.get("fanout", {})
    peer = results.get("peer", {})
    if "paced" in fan:
        add("Fan-out over TLS, 4 Mbit/s paced: server CPU s per GB delivered")
        add(f"  {'N':>4}  {'MRS':<26} {'node-media-server':<26} {'ratio':>6}  "
            f"{'MRS core share':<22}")
        for n, value in fan["paced"].items():
            r = ratio(value["cpuPerGB"], peer.get(n, {}).get("cpuPerGB"))
            add(f"  {n:>4}  {med(value['cpuPerGB']):<26} "
                f"{med(peer.get(n, {}).get('cpuPerGB')):<26} "
                f"{(f'{r:.2f}' if r is not None else '-'):>6}  {med(value['share']):<22}"
                f" gaps {value['gaps']}")
        add("Fan-out bulk (unpaced)")
        for n, value in fan["bulk"].items():
            add(f"  N={n:<4} delivered MB/s {med(value['deliveredMBps'])}  MB per core-s "
                f"{med(value['MBpsPerCore'])}  CPU s/GB {med(value['cpuPerGB'])}")
    dev = results.get("devices", {})
    if "share" in dev:
        add(f"Many devices: {dev['devices']} x 2 Mbit/s, 2 monitors each")
        add(f"  server core share {med(dev['share'])}, dropped {dev['dropped']}, "
            f"missing {dev['missing']}")
        add(f"  latency ms p50 {med(dev['latencyP50Ms'])} p99 {med(dev['latencyP99Ms'])} "
            f"max {med(dev['latencyMaxMs'])}")
    idle = results.get("idle", {})
    for name, value in idle.items():
        if isinstance(value, dict) and "connections" in value:
            add(f"Idle TLS connections, {name}: {value['connections']} held, "
                f"{value['bytesPerConnection'] / 1024:.1f} KiB RSS each, "
                f"core share {med(value['share'])}")
    for name, value in results.get("handshakes", {}).items():
        if isinstance(value, dict) and "perCoreSecond" in value:
            add(f"Handshakes per core-second, {name}: {med(value['perCoreSecond'])}")
    slow = results.get("slow", {})
    if "rssGrowth" in slow:
        add(f"Slow monitor ({slow['seconds']:g} s): RSS growth "
            f"{slow['rssGrowth'] / 2**20:.1f} MiB, others dropped {slow['droppedOthers']}")
        if slow.get("secondsToDisconnect") is not None:
            add(f"  stalled monitor disconnected by the server ({slow['disconnectReason']}) "
                f"{slow['secondsToDisconnect']:.1f} s after it stopped reading")
        else:
            add(f"  stalled monitor not disconnected by the server within {slow['seconds']:g} s")
    adm = results.get("admin", {})
    for page, value in adm.items():
        if isinstance(value, dict) and "p99Ms" in value:
            add(f"Admin, {adm['devices']} devices, {page}: p50 {med(value['p50Ms'])} ms, "
                f"p99 {med(value['p99Ms'])} ms, {value['bytes']} bytes")
    for name, value in results.items():
        if isinstance(value, dict) and "error" in value:
            add(f"{name}: FAILED: {value['error']}")
    add("Targets")
    for name, figure, met in targets(results):
        mark = {True: "met", False: "MISSED", None: "not measured"}[met]
        add(f"  {mark:<12} {name}: {figure}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="our server only, small sizes, one run (about a minute)")
    parser.add_argument("--only", action="append", choices=BENCHMARKS + ("limit", "peer"),
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--runs", type=int, help="runs per measurement (default 3)")
    parser.add_argument("--output", type=Path, help="result file (default bench/results/)")
    args = parser.parse_args(argv)
    raiseFileLimit()
    sizes = QUICK if args.quick else Sizes()
    if args.runs:
        sizes.runs = args.runs
    problems: dict[str, str] = {}
    if sizes.references:
        problems = references.ensureTools()
        for tool, reason in problems.items():
            print(f"reference not available: {tool}: {reason}", file=sys.stderr)
    began = time.monotonic()
    started = datetime.datetime.now(datetime.UTC)
    results = runAll(sizes, set(args.only) if args.only else None,
                     log=lambda text: print(text, file=sys.stderr, flush=True))
    document = {
        "date": started.isoformat(timespec="seconds"),
        "command": "python -m bench" + (" --quick" if args.quick else ""),
        "seconds": time.monotonic() - began,
        "machine": machine(),
        "peer": {**references.versions(), "problems": problems},
        "sizes": sizes.__dict__,
        "results": results,
        "targets": [{"target": n, "figure": f, "met": m} for n, f, m in targets(results)],
    }
    output = args.output
    if output is None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        output = RESULTS / f"{started:%Y%m%dT%H%M%S}{'-quick' if args.quick else ''}.json"
    output.write_text(json.dumps(document, indent=2, default=str))
    print(table(results))
    print(f"results written to {output} ({document['seconds']:.0f} s)")
    return 1 if any(isinstance(v, dict) and "error" in v for v in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
