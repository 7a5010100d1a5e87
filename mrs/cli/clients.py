"""
C{mrs device stream} and C{mrs monitor}: a capture device that streams
files, and a monitor that saves or shows what it receives.

Both print their progress and every retry to standard error, one line
each, and exit with 1 and a one-line message when they give up.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any, TextIO

from twisted.internet.defer import Deferred, FirstError, gatherResults
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool

from mrs.cli import CommandContext, CommandError, commandGroup, formatTable
from mrs.client.connection import (
    SECURITY_PLAINTEXT,
    SECURITY_STARTTLS,
    SECURITY_TLS,
    ClientError,
    ConnectOptions,
    parseServer,
)
from mrs.client.device import DeviceClient
from mrs.client.monitor import MonitorClient, RequestFailed
from mrs.client.outputs import ByteSink, LocationOutput, MediaOutput, OutputError
from mrs.client.sources import InputError, ItemReader, identify
from mrs.wire import SUBSCRIBE_TRACKS, TRACK_AUDIO, TRACK_VIDEO, Devices, Event, Location

#: Default number of failed attempts in a row before C{mrs monitor} gives
#: up.  C{mrs device stream} retries forever unless --retries is given.
MONITOR_RETRIES = 5


def register(subparsers: Any) -> None:
    """
    Add C{device stream} and C{monitor} to the C{mrs} argument parser.
    """
    devices = commandGroup(
        subparsers, "device", help="add, list, change or remove capture devices",
        description="Capture devices log in with an id and a secret and publish media.",
    )
    stream = devices.add_parser(
        "stream", help="stream media and GPS files to the server as a capture device would",
        description="Log in as a device, announce one track per file and stream each track "
        "while the server asks for it (monitors watch it), paced by the files' timestamps.  "
        "Formats are detected from the content: H.264 or H.265 Annex-B, MJPEG, AAC in ADTS, "
        "Opus in Ogg, NMEA 0183 logs, GPX tracks.  Without --loop the command exits once "
        "every track was sent to the end of its file; a track that no monitor watches is not "
        "sent, so the command waits for one.  The secret is read from a prompt, one line of "
        "standard input or --secret-file.",
    )
    stream.add_argument("files", metavar="FILE", nargs="+",
                        help="media or GPS files, at most one each of video, audio and GPS")
    stream.add_argument("--device", required=True, metavar="ID", help="the device id")
    stream.add_argument("--secret-file", dest="secretFile", metavar="PATH",
                        help="read the device secret from the first line of this file")
    stream.add_argument("--loop", action="store_true",
                        help="start each file again at its end, until interrupted")
    stream.add_argument("--no-pace", dest="pace", action="store_false",
                        help="send as fast as the connection takes it instead of in real time")
    stream.add_argument("--speed", type=float, default=1.0, metavar="FACTOR",
                        help="replay FACTOR times faster than real time (default 1), for "
                        "example 60 to send an hour-long GPS log in a minute")
    stream.add_argument("--include-invalid", dest="includeInvalid", action="store_true",
                        help="also send NMEA positions the receiver marks invalid, with "
                        "valid=false (the server does not relay them)")
    _addConnectionOptions(stream, retries=None)
    stream.set_defaults(func=deviceStream)

    monitor = subparsers.add_parser(
        "monitor", help="watch devices: list them, save or show their tracks, send commands",
        description="Log in as a user, then list the visible devices (--list), subscribe to "
        "one device's tracks and write them to files or standard output, or send a command.  "
        "Events (online, offline, reconnecting, revoked) go to standard error, one line "
        "each.  The password is read from a prompt, one line of standard input or "
        "--password-file.",
    )
    monitor.add_argument("--user", required=True, metavar="NAME", help="the user name")
    monitor.add_argument("--password-file", dest="passwordFile", metavar="PATH",
                         help="read the password from the first line of this file")
    monitor.add_argument("--list", action="store_true",
                         help="print the devices this user may see and exit")
    monitor.add_argument("--device", metavar="ID", help="the device to watch or command")
    monitor.add_argument("--tracks", type=_parseTracks, metavar="LIST",
                         help="comma-separated tracks to subscribe to: video, audio, location "
                         "(default: all three)")
    monitor.add_argument("--video-out", dest="videoOut", metavar="PATH",
                         help="write video as an Annex-B (H.264, H.265) or MJPEG stream")
    monitor.add_argument("--audio-out", dest="audioOut", metavar="PATH",
                         help="write audio as ADTS (AAC) or Ogg Opus")
    monitor.add_argument("--gpx-out", dest="gpxOut", metavar="PATH",
                         help="write locations as a GPX 1.1 track")
    monitor.add_argument("--ndjson-out", dest="ndjsonOut", metavar="PATH",
                         help="write locations as NDJSON, one JSON object per line")
    monitor.add_argument("--stdout", action="store_true",
                         help="write the video stream to standard output, for example into "
                         "'ffplay -f h264 -'")
    monitor.add_argument("--command", metavar="NAME", help="send this command to the device "
                         "and print the result")
    monitor.add_argument("--args", type=_parseArgs, default={}, metavar="JSON",
                         help="arguments of --command as a JSON object (default {})")
    monitor.add_argument("--duration", type=float, metavar="SECONDS",
                         help="stop after this many seconds of watching")
    monitor.add_argument("--frames", type=int, metavar="N",
                         help="stop after N video frames (audio frames without video)")
    _addConnectionOptions(monitor, retries=MONITOR_RETRIES)
    monitor.set_defaults(func=monitorCommand)


def _addConnectionOptions(parser: argparse.ArgumentParser, retries: int | None) -> None:
    parser.add_argument("--server", required=True, metavar="HOST[:PORT]",
                        help="the server; the port defaults to 12651 (TLS), or 12650 with "
                        "--starttls or --plaintext")
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument("--ca-file", "--ca", dest="caFile", metavar="PATH",
                       help="PEM file of the CA that issued the server's certificate, or the "
                       "server's self-signed certificate (DATA_DIR/tls/server.crt)")
    trust.add_argument("--fingerprint", metavar="SHA256",
                       help="pin the server certificate's SHA-256 fingerprint (mrs tls show)")
    security = parser.add_mutually_exclusive_group()
    security.add_argument("--starttls", dest="security", action="store_const",
                          const=SECURITY_STARTTLS,
                          help="connect to the plaintext port and upgrade with STARTTLS")
    security.add_argument("--plaintext", dest="security", action="store_const",
                          const=SECURITY_PLAINTEXT,
                          help="connect without encryption (the server must allow it)")
    parser.set_defaults(security=SECURITY_TLS)
    default = "retry forever" if retries is None else f"default {retries}"
    parser.add_argument("--retries", type=int, default=retries, metavar="N",
                        help=f"failed connection attempts in a row before giving up ({default})")


def _parseTracks(text: str) -> tuple[str, ...]:
    tracks = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in tracks if t not in SUBSCRIBE_TRACKS]
    if unknown or not tracks:
        raise argparse.ArgumentTypeError(
            f"invalid track list {text!r}; use one or more of {', '.join(SUBSCRIBE_TRACKS)}")
    return tracks


def _parseArgs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--args {text!r} is not valid JSON: {e}")
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--args {text!r} must be a JSON object, such as "
                                         f"'{{\"level\": 3}}'")
    return value


def _connectOptions(args: argparse.Namespace) -> ConnectOptions:
    try:
        server = parseServer(args.server, args.security)
    except ValueError as e:
        raise CommandError(str(e))
    options = ConnectOptions(server=server, security=args.security, caFile=args.caFile,
                             fingerprint=args.fingerprint, retries=args.retries)
    if args.security != SECURITY_PLAINTEXT:
        try:
            options.tlsCreator()
        except ValueError as e:
            raise CommandError(str(e))
    return options


def _readCredential(context: CommandContext, path: str | None, prompt: str) -> str:
    """
    Read a secret from the first line of C{path}, else from a prompt on a
    terminal or one line of standard input.
    """
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                value = f.readline().rstrip("\r\n")
        except OSError as e:
            raise CommandError(f"cannot read {path!r}: {e.strerror or e}; check the path")
        if not value:
            raise CommandError(f"{path!r} is empty; put the secret on its first line")
        return value
    if context.stdin.isatty():
        try:
            value = getpass.getpass(prompt)
        except EOFError:
            value = ""
    else:
        value = context.stdin.readline().rstrip("\r\n")
    if not value:
        raise CommandError("no secret given; pipe it as one line of standard input, use a "
                           "terminal to be prompted, or pass a file")
    return value


def _report(stream: TextIO) -> Any:
    def report(line: str) -> None:
        stream.write(f"{line}\n")
        stream.flush()

    return report


def _threads(reactor: Any) -> Any:
    def runInThread(f: Any, *args: Any) -> Deferred[Any]:
        return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)

    return runInThread


# mrs device stream


async def deviceStream(args: argparse.Namespace, context: CommandContext) -> int:
    reactor = context.reactor
    runInThread = _threads(reactor)
    options = _connectOptions(args)
    secret = _readCredential(context, args.secretFile, f"Secret for device {args.device}: ")

    def prepare() -> list[ItemReader]:
        readers = []
        for path in args.files:
            reader = ItemReader(identify(path), clock=reactor.seconds,
                                includeInvalid=args.includeInvalid)
            reader.probe()
            readers.append(reader)
        return readers

    try:
        readers = await runInThread(prepare)
    except InputError as e:
        raise CommandError(str(e))
    report = _report(context.err)
    for reader in readers:
        source = reader.source
        codec = f" ({source.codec})" if source.codec else ""
        report(f"{source.path.name}: {source.format}, {source.track} track{codec}")
    try:
        client = DeviceClient(reactor, options, args.device, secret, readers, pace=args.pace,
                              speed=args.speed, loop=args.loop, runInThread=runInThread,
                              report=report)
    except ValueError as e:
        raise CommandError(str(e))
    client.loggedIn.addErrback(lambda f: None)
    try:
        await client.start()
    except ClientError as e:
        raise CommandError(str(e))
    finally:
        for line in client.summary():
            report(line)
    return 0


# mrs monitor


class _Watch:
    """
    The outputs of one monitored device and the conditions that end the
    watch.
    """

    def __init__(self, args: argparse.Namespace, context: CommandContext,
                 client: MonitorClient, report: Any) -> None:
        self.args = args
        self.client = client
        self.report = report
        self.err = context.err
        self.done: Deferred[str] = Deferred()
        runInThread = _threads(context.reactor)
        self.video: MediaOutput | None = None
        self.audio: MediaOutput | None = None
        self.locations: list[LocationOutput] = []
        self.sinks: list[ByteSink] = []
        if args.videoOut or args.stdout:
            target: Any = args.videoOut if args.videoOut else sys.stdout.buffer
            self.video = MediaOutput(self._sink(target, runInThread), report)
        if args.audioOut:
            self.audio = MediaOutput(self._sink(args.audioOut, runInThread), report)
        if args.gpxOut:
            self.locations.append(LocationOutput(self._sink(args.gpxOut, runInThread), "gpx",
                                                 args.device))
        if args.ndjsonOut:
            self.locations.append(LocationOutput(self._sink(args.ndjsonOut, runInThread),
                                                 "ndjson", args.device))
        self.counts = {"video": [0, 0], "audio": [0, 0], "location": [0, 0]}
        self.started = context.reactor.seconds()
        self.reactor = context.reactor
        self.subscribed = False
        self.progress: LoopingCall | None = None
        if context.err.isatty():
            self.progress = LoopingCall(self._showProgress)
            self.progress.clock = context.reactor

    def _sink(self, target: Any, runInThread: Any) -> ByteSink:
        sink = ByteSink(target, runInThread)
        self.sinks.append(sink)
        return sink

    def open(self) -> Deferred[Any]:
        return gatherResults([sink.open() for sink in self.sinks], consumeErrors=True)

    def frame(self, frame: Any) -> None:
        if self.client.deviceOf(frame) != self.args.device:
            return
        name = "video" if frame.track == TRACK_VIDEO else "audio"
        output = self.video if frame.track == TRACK_VIDEO else self.audio
        if frame.track not in (TRACK_VIDEO, TRACK_AUDIO):
            return
        if not frame.config:
            self.counts[name][0] += 1
        self.counts[name][1] += len(frame.data)
        if output is not None:
            try:
                output.write(frame)
            except (OutputError, ValueError) as e:
                self.finish(f"error: {e}")
                return
        limit = self.args.frames
        primary = "video" if "video" in self.client.subscriptions.get(self.args.device, ()) \
            else "audio"
        if limit is not None and name == primary and self.counts[name][0] >= limit:
            self.finish(f"received {limit} {name} frames")

    def location(self, location: Location) -> None:
        if location.device != self.args.device:
            return
        self.counts["location"][0] += 1
        for output in self.locations:
            output.write(location)

    def event(self, event: Any) -> None:
        if isinstance(event, Event) and event.device == self.args.device:
            if event.event == "device_offline" and self.subscribed:
                self.finish(f"device {event.device} went offline")

    def finish(self, reason: str) -> None:
        if not self.done.called:
            self.done.callback(reason)

    def _showProgress(self) -> None:
        elapsed = max(self.reactor.seconds() - self.started, 0.001)
        parts = []
        for name, (count, size) in self.counts.items():
            if name == "location":
                parts.append(f"location {count}")
            else:
                parts.append(f"{name} {count} frames {size / 1e6:.2f} MB "
                             f"{size * 8 / elapsed / 1e6:.2f} Mbit/s")
        self.err.write("\r" + " | ".join(parts) + "\x1b[K")
        self.err.flush()

    def close(self) -> Deferred[Any]:
        if self.progress is not None and self.progress.running:
            self.progress.stop()
            self.err.write("\n")
        closing = []
        for output in (self.video, self.audio):
            if output is not None:
                closing.append(output.close())
        for location in self.locations:
            closing.append(location.close())
        return gatherResults(closing, consumeErrors=True)

    def summary(self) -> list[str]:
        lines = []
        for name, (count, size) in self.counts.items():
            if name == "location":
                lines.append(f"location: {count} positions")
            else:
                lines.append(f"{name}: {count} frames, {size} bytes")
        for sink in self.sinks:
            if sink.error is not None:
                lines.append(f"error: {sink.error}")
        return lines


async def monitorCommand(args: argparse.Namespace, context: CommandContext) -> int:
    if not args.list and not args.device:
        raise CommandError("give --device ID to watch or command a device, or --list to see "
                           "the devices")
    if args.args and not args.command:
        raise CommandError("--args needs --command NAME")
    options = _connectOptions(args)
    password = _readCredential(context, args.passwordFile, f"Password for {args.user}: ")
    report = _report(context.err)
    client = MonitorClient(context.reactor, options, args.user, password, report=report)
    closed = client.start()
    try:
        await client.loggedIn
        if args.list:
            devices = await client.listDevices()
            context.out.write(_formatDevices(devices))
            return 0
        return await _watch(args, context, client, report)
    except ClientError as e:
        raise CommandError(str(e))
    except RequestFailed as e:
        raise CommandError(f"{e.message} ({e.code})")
    finally:
        if not closed.called:
            await client.stop()
        # The error, if any, was reported through loggedIn or the watch.
        closed.addErrback(lambda f: None)


def _formatDevices(devices: Devices) -> str:
    rows = []
    for info in devices.devices:
        tracks = ",".join(t.track for t in info.tracks) or "-"
        where = "-"
        if info.location is not None:
            where = f"{info.location.lat:.5f},{info.location.lon:.5f}"
        rows.append((info.device, info.name, "online" if info.online else "offline",
                     info.source, tracks, ",".join(info.rights) or "-", where))
    return formatTable(("DEVICE", "NAME", "STATUS", "SOURCE", "TRACKS", "RIGHTS", "LOCATION"),
                       rows)


async def _watch(args: argparse.Namespace, context: CommandContext, client: MonitorClient,
                 report: Any) -> int:
    outputs = bool(args.videoOut or args.audioOut or args.gpxOut or args.ndjsonOut
                   or args.stdout)
    subscribing = outputs or args.tracks is not None or args.command is None
    code = 0
    if args.command:
        result = await client.command(args.device, args.command, args.args)
        resultText = json.dumps(result.result) if result.result is not None else ""
        if result.ok:
            context.out.write(f"{args.command}: ok {resultText}".rstrip() + "\n")
        else:
            context.out.write(f"{args.command}: failed: {result.error}\n")
            code = 1
        if not subscribing:
            return code

    watch = _Watch(args, context, client, report)
    try:
        await watch.open()
    except FirstError as e:
        raise CommandError(str(e.subFailure.value))
    client.observe("frame", watch.frame)
    client.observe("location", watch.location)
    client.observe("event", watch.event)
    client.closed.addErrback(lambda f: watch.finish(f"error: {f.getErrorMessage()}"))
    client.closed.addCallback(lambda _: watch.finish("the connection closed"))
    tracks = args.tracks or SUBSCRIBE_TRACKS
    online: Deferred[None] | None = None

    def deviceOnline(event: Any) -> None:
        if (online is not None and not online.called and isinstance(event, Event)
                and event.device == args.device and event.event == "device_online"):
            online.callback(None)

    client.observe("event", deviceOnline)
    while True:
        try:
            subscribed = await client.subscribe(args.device, tracks)
            break
        except RequestFailed as e:
            if e.code != "device_offline":
                raise CommandError(f"subscribe failed: {e.message} ({e.code})")
        report(f"device {args.device} is offline; waiting for it to come online")
        online = Deferred()
        waiting = await _first(online, watch.done)
        if waiting is not None:
            await watch.close()
            raise CommandError(waiting)
    watch.subscribed = True
    watch.started = context.reactor.seconds()
    denied = f"; denied: {', '.join(subscribed.denied)}" if subscribed.denied else ""
    report(f"subscribed to {', '.join(subscribed.tracks)} of device {args.device}{denied}")
    if watch.progress is not None:
        watch.progress.start(0.5, now=False)
    if args.duration is not None:
        timer = context.reactor.callLater(args.duration, watch.finish,
                                          f"watched for {args.duration:g} s")
        watch.done.addBoth(lambda r: (timer.active() and timer.cancel(), r)[1])
    reason = await watch.done
    await watch.close()
    report(f"stopped: {reason}")
    for line in watch.summary():
        report(line)
    if reason.startswith("error: "):
        raise CommandError(reason[len("error: "):])
    if any(sink.error is not None for sink in watch.sinks):
        return 1
    return code


def _first(online: Deferred[None], done: Deferred[str]) -> Deferred[str | None]:
    """
    Fire with L{None} when C{online} fires first, or with the reason the
    watch ended when C{done} fires first.
    """
    result: Deferred[str | None] = Deferred()

    def wentOnline(_: object) -> None:
        if not result.called:
            result.callback(None)

    def ended(reason: str) -> str:
        if not result.called:
            result.callback(reason)
        return reason

    online.addCallback(wentOnline)
    done.addCallback(ended)
    return result


__all__ = ["register", "deviceStream", "monitorCommand"]
