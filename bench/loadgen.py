"""
Load generator processes: many MRS (or HTTPS) client connections in one
asyncio process.

The parent runs C{python -m bench.loadgen MODE SPEC}, where SPEC is a
JSON object.  The process connects and logs in its clients, prints
C{ready} on a line of its own, waits for C{go} on standard input, runs
until C{stop} arrives (or until the spec's C{duration} has passed), then
prints C{result} and a JSON object on one line, and exits.

Media frames carry, in their last 21 bytes, the sending device's index,
the frame's sequence number and the send time on C{CLOCK_MONOTONIC} (one
clock for every process of the machine), followed by the filler NAL unit's
final byte; monitors use them to count drops and measure relay latency.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import resource
import socket
import ssl
import struct
import sys
import time
from pathlib import Path
from typing import Any

from mrs.media.h264 import splitAccessUnits
from mrs.wire import (
    CODEC_H264,
    FLAG_KEYFRAME,
    FRAME_CONTROL,
    FRAME_MEDIA,
    PREAMBLE,
    TRACK_VIDEO,
    MediaFrame,
    encodeMessage,
    parseMessage,
)
from mrs.wire.constants import FRAME_HEADER, MEDIA_HEADER_SIZE

SAMPLE = (Path(__file__).parent.parent / "tests" / "data" / "media"
          / "testsrc_640x360_25fps_gop50_baseline.h264")
FRAME_INTERVAL = 0.04
MARK = struct.Struct(">IQQ")
_HEADER = FRAME_HEADER
_HEADER_SIZE = FRAME_HEADER.size


def raiseFileLimit() -> int:
    """
    Raise this process's open-file limit to its hard limit; return it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def paddedUnits(size: int) -> list[tuple[bytes, bool]]:
    """
    Return the sample's access units padded with an H.264 filler NAL unit
    to about C{size} bytes (at least room for the mark), with keyframe flags.
    """
    units = []
    for sample in splitAccessUnits(SAMPLE.read_bytes()):
        filler = max(MARK.size, size - len(sample.data) - 6)
        units.append((sample.data + b"\x00\x00\x00\x01\x0c" + b"\xff" * filler + b"\x80",
                      sample.keyframe))
    return units


def markedFrame(unit: bytes, keyframe: bool, device: int, seq: int) -> bytes:
    """
    Encode C{unit} as a media frame carrying C{device}, C{seq} and the
    current monotonic time in its last bytes.
    """
    now = time.monotonic_ns()
    data = unit[:-(MARK.size + 1)] + MARK.pack(device, seq, now) + b"\x80"
    return MediaFrame(TRACK_VIDEO, CODEC_H264, FLAG_KEYFRAME if keyframe else 0, 0,
                      seq * 40_000, data).encode()


def clientContext(caFile: str) -> ssl.SSLContext:
    """
    A TLS client context that trusts only C{caFile}.
    """
    context = ssl.create_default_context(cafile=caFile)
    context.set_alpn_protocols(["mrs/1"])
    return context


def encode(message: dict[str, Any]) -> bytes:
    return encodeMessage(parseMessage(message))


class Link(asyncio.Protocol):
    """
    One MRS client connection: frames in, control messages answered, media
    counted.
    """

    def __init__(self, stats: Stats | None = None) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.stats = stats
        self.closed = asyncio.get_running_loop().create_future()
        self.counting = False
        self.bytes = 0
        self.lastSeq: dict[int, int] = {}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)

    def data_received(self, data: bytes) -> None:
        if self.counting:
            self.bytes += len(data)
        buffer = self.buffer
        buffer += data
        offset = 0
        end = len(buffer)
        while end - offset >= _HEADER_SIZE:
            kind, _, _, length = _HEADER.unpack_from(buffer, offset)
            stop = offset + _HEADER_SIZE + length
            if stop > end:
                break
            if kind == FRAME_MEDIA:
                if self.stats is not None and self.counting and length >= MEDIA_HEADER_SIZE + 21:
                    device, seq, sent = MARK.unpack_from(buffer, stop - 21)
                    self.stats.frame(self, device, seq, sent)
            elif kind == FRAME_CONTROL:
                message = json.loads(bytes(buffer[offset + _HEADER_SIZE:stop]))
                if message.get("type") == "ping":
                    self.send({"type": "pong"})
                else:
                    self.messages.put_nowait(message)
            offset = stop
        if offset:
            del buffer[:offset]

    def send(self, message: dict[str, Any], preamble: bool = False) -> None:
        assert self.transport is not None
        self.transport.write((PREAMBLE if preamble else b"") + encode(message))

    async def expect(self, *kinds: str, timeout: float = 60.0) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.messages.get(), timeout)
            if message.get("type") in kinds:
                return message
            if message.get("type") == "error":
                raise RuntimeError(f"server error: {message}")


class Stats:
    """
    Frames received by a set of monitors: counts, sequence gaps, latencies.
    """

    def __init__(self) -> None:
        self.frames = 0
        self.gaps = 0
        self.latencies: list[int] = []

    def frame(self, link: Link, device: int, seq: int, sent: int) -> None:
        self.frames += 1
        self.latencies.append(time.monotonic_ns() - sent)
        last = link.lastSeq.get(device)
        if last is not None and seq != last + 1:
            self.gaps += max(0, seq - last - 1)
        link.lastSeq[device] = seq


async def connect(spec: dict[str, Any], context: ssl.SSLContext,
                  stats: Stats | None = None) -> Link:
    loop = asyncio.get_running_loop()
    _, link = await loop.create_connection(lambda: Link(stats), spec["host"], spec["port"],
                                           ssl=context, server_hostname=spec["host"])
    return link


async def login(link: Link, role: str, name: str, secret: str | None = None,
                token: str | None = None) -> dict[str, Any]:
    link.send({"type": "hello", "versions": [1], "role": role}, preamble=True)
    await link.expect("welcome")
    if role == "device":
        link.send({"type": "login", "device": name, "secret": secret})
    elif token is not None:
        link.send({"type": "login", "token": token})
    else:
        link.send({"type": "login", "user": name, "password": secret})
    return await link.expect("login_ok")


async def gather(count: int, make: Any, concurrency: int = 64) -> list[Any]:
    """
    Run C{make(i)} for i in range(count), at most C{concurrency} at once.
    """
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with limit:
            return await make(i)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def waitForCommand(word: str) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == word:
            return


def ready() -> None:
    print("ready", flush=True)


def result(values: dict[str, Any]) -> None:
    print("result " + json.dumps(values), flush=True)


async def runDevices(spec: dict[str, Any]) -> dict[str, Any]:
    """
    Devices C{spec["first"]} to C{first + count - 1} stream the padded
    sample, paced at 25 frames per second or, with C{paced} false, as
    fast as the server reads.
    """
    context = clientContext(spec["ca"])
    units = paddedUnits(spec["frameSize"])
    first, count = spec["first"], spec["count"]

    async def device(i: int) -> Link:
        link = await connect(spec, context)
        await login(link, "device", f"{spec['prefix']}{first + i}", spec["secret"])
        link.send({"type": "announce", "tracks": [{"track": "video", "codec": "h264"}]})
        return link

    links = await gather(count, device)
    ready()
    await waitForCommand("go")
    sent = [0] * count
    sentBytes = [0] * count
    stopping = asyncio.Event()
    started = time.monotonic()

    async def stream(i: int) -> None:
        link = links[i]
        assert link.transport is not None
        # Spread the devices over the frame interval.
        deadline = time.monotonic() + FRAME_INTERVAL * i / count
        seq = 0
        while not stopping.is_set():
            if spec["paced"]:
                delay = deadline - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                deadline += FRAME_INTERVAL
            unit, keyframe = units[seq % len(units)]
            frame = markedFrame(unit, keyframe, first + i, seq)
            link.transport.write(frame)
            sent[i] = seq + 1
            sentBytes[i] += len(frame)
            seq += 1
            if not spec["paced"]:
                while link.transport.get_write_buffer_size() > 1024 * 1024:
                    await asyncio.sleep(0.002)
                if seq % 8 == 0:
                    await asyncio.sleep(0)

    tasks = [asyncio.ensure_future(stream(i)) for i in range(count)]
    await waitForCommand("stop")
    stopping.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    return {"framesSent": sum(sent), "bytesSent": sum(sentBytes), "seconds": elapsed,
            "perDevice": {str(first + i): sent[i] for i in range(count)}}


async def runMonitors(spec: dict[str, Any]) -> dict[str, Any]:
    """
    Monitors subscribe to the video of the devices in C{spec["watch"]}
    (one list of device ids per monitor) and count what arrives; with
    C{stall}, the first monitor stops reading at C{go}.
    """
    context = clientContext(spec["ca"])
    stats = Stats()
    token: str | None = spec.get("token")

    async def monitor(i: int) -> Link:
        nonlocal token
        link = await connect(spec, context, stats)
        if token is None:
            reply = await login(link, "monitor", spec["user"], spec["password"])
            token = reply["token"]
        else:
            await login(link, "monitor", spec["user"], token=token)
        for device in spec["watch"][i]:
            link.send({"type": "subscribe", "device": device, "tracks": ["video"]})
            await link.expect("subscribed")
        return link

    first = await monitor(0)
    links = [first] + await gather(len(spec["watch"]) - 1, lambda i: monitor(i + 1))
    stalled = None
    if spec.get("stall"):
        stalled = links[0]
        assert stalled.transport is not None
        sock = stalled.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    ready()
    await waitForCommand("go")
    started = time.monotonic()
    for link in links:
        link.counting = True
    if stalled is not None:
        assert stalled.transport is not None
        stalled.transport.pause_reading()
    await waitForCommand("stop")
    elapsed = time.monotonic() - started
    for link in links:
        link.counting = False
    counted = [link for link in links if link is not stalled]
    latencies = sorted(stats.latencies)
    lost = [link for link in counted if link.closed.done()]
    return {"bytes": sum(link.bytes for link in counted), "frames": stats.frames,
            "gaps": stats.gaps, "seconds": elapsed, "closed": len(lost),
            "stalledClosed": bool(stalled is not None and stalled.closed.done()),
            "latencyMs": percentiles(latencies)}


def percentiles(values: list[int]) -> dict[str, float]:
    """
    p50, p99 and max of sorted nanosecond values, in milliseconds.
    """
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": 0}
    return {"p50": values[len(values) // 2] / 1e6,
            "p99": values[min(len(values) - 1, int(len(values) * 0.99))] / 1e6,
            "max": values[-1] / 1e6, "count": len(values)}


class FlvViewer(asyncio.Protocol):
    """
    An HTTPS-FLV viewer that only counts bytes after the response header.
    """

    def __init__(self) -> None:
        self.bytes = 0
        self.counting = False
        self.transport: Any = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.counting:
            self.bytes += len(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)


async def runFlvViewers(spec: dict[str, Any]) -> dict[str, Any]:
    """
    C{spec["count"]} HTTPS-FLV viewers of C{spec["path"]}.
    """
    context = clientContext(spec["ca"])
    context.set_alpn_protocols(["http/1.1"])
    loop = asyncio.get_running_loop()

    async def viewer(i: int) -> FlvViewer:
        _, protocol = await loop.create_connection(FlvViewer, spec["host"], spec["port"],
                                                   ssl=context, server_hostname=spec["host"])
        protocol.transport.write(f"GET {spec['path']} HTTP/1.1\r\nHost: {spec['host']}\r\n"
                                 "Connection: keep-alive\r\n\r\n".encode())
        return protocol

    viewers = await gather(spec["count"], viewer)
    await asyncio.sleep(1.0)
    ready()
    await waitForCommand("go")
    started = time.monotonic()
    for v in viewers:
        v.counting = True
    await waitForCommand("stop")
    elapsed = time.monotonic() - started
    return {"bytes": sum(v.bytes for v in viewers), "seconds": elapsed,
            "closed": sum(1 for v in viewers if v.closed.done())}


async def runIdle(spec: dict[str, Any]) -> dict[str, Any]:
    """
    C{spec["count"]} logged-in monitors (or, with C{http}, TLS connections
    that made one HTTP request) that stay idle, answering keepalive pings.
    """
    raiseFileLimit()
    context = clientContext(spec["ca"])
    loop = asyncio.get_running_loop()
    failures = 0

    async def one(i: int) -> Any:
        nonlocal failures
        try:
            if spec.get("http"):
                context.set_alpn_protocols(["http/1.1"])
                _, protocol = await loop.create_connection(
                    FlvViewer, spec["host"], spec["port"], ssl=context,
                    server_hostname=spec["host"])
                protocol.transport.write(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
                return protocol
            link = await connect(spec, context)
            await login(link, "monitor", spec["user"], token=spec["token"])
            return link
        except (TimeoutError, OSError, RuntimeError):
            failures += 1
            return None

    connections = await gather(spec["count"], one, concurrency=32)
    ready()
    await waitForCommand("stop")
    alive = sum(1 for c in connections if c is not None and not c.closed.done())
    return {"connected": spec["count"] - failures, "alive": alive}


async def runToken(spec: dict[str, Any]) -> dict[str, Any]:
    """
    Log in once with a password and return the login token.
    """
    link = await connect(spec, clientContext(spec["ca"]))
    reply = await login(link, "monitor", spec["user"], spec["password"])
    assert link.transport is not None
    link.transport.close()
    return {"token": reply["token"]}


def runAdmin(spec: dict[str, Any]) -> dict[str, Any]:
    """
    Time C{spec["requests"]} sequential requests of each page: the
    dashboard (signed in through the login form) and the API lists.
    """
    context = ssl.create_default_context(cafile=spec["ca"])
    conn = http.client.HTTPSConnection(spec["host"], spec["port"], context=context, timeout=30)

    def request(method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response

    status, page, response = request("GET", "/admin/login")
    cookies = [c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") or []]
    csrf = page.decode().split('name="csrf" value="', 1)[1].split('"', 1)[0]
    from urllib.parse import urlencode

    status, _, response = request(
        "POST", "/admin/login",
        urlencode({"csrf": csrf, "username": spec["user"], "password": spec["password"]}),
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "; ".join(cookies)})
    if status != 303:
        raise RuntimeError(f"admin login answered {status}")
    session = [c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") or []
               if c.startswith("__Host-mrs_session=")]
    pages = {
        "dashboard": ("/admin", {"Cookie": "; ".join(session)}),
        "api devices": ("/api/v1/devices", {"Authorization": f"Bearer {spec['token']}"}),
        "api users": ("/api/v1/users", {"Authorization": f"Bearer {spec['token']}"}),
        "api rules": ("/api/v1/rules", {"Authorization": f"Bearer {spec['token']}"}),
    }
    results = {}
    for name, (path, headers) in pages.items():
        times = []
        size = 0
        for _ in range(spec["requests"]):
            began = time.monotonic_ns()
            status, body, _ = request("GET", path, headers=headers)
            times.append(time.monotonic_ns() - began)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
            size = len(body)
        results[name] = {**percentiles(sorted(times)), "bytes": size}
    return results


MODES = {"devices": runDevices, "monitors": runMonitors, "flv": runFlvViewers,
         "idle": runIdle, "token": runToken}


def main(argv: list[str]) -> None:
    mode, spec = argv[0], json.loads(argv[1])
    if mode == "admin":
        ready()
        result(runAdmin(spec))
        return
    values = asyncio.run(MODES[mode](spec))
    result(values)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
