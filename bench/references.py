"""
References measured in the same run: the limit (OpenSSL's AES-GCM speed,
nginx sending and socat receiving over TLS) and the peer
(node-media-server relaying RTMPS in to HTTPS-FLV out).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import Meter, descendants, freePort, raiseFileLimit
from bench.server import waitForPort

#: node-media-server, pinned; installed under bench/results/ (git-ignored).
NMS_VERSION = "4.4.3"
NODE_DIR = Path(__file__).parent / "results" / "node"
APT_PACKAGES = {"nginx": "nginx", "socat": "socat", "curl": "curl", "openssl": "openssl",
                "ffmpeg": "ffmpeg"}


def ensureTools() -> dict[str, str]:
    """
    Install what the references need and is missing: Debian packages with
    apt-get when run as root, node-media-server with npm.  Return what
    could not be installed, with the reason.
    """
    problems: dict[str, str] = {}
    missing = [package for tool, package in APT_PACKAGES.items() if shutil.which(tool) is None]
    if missing:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        for tool, package in APT_PACKAGES.items():
            if shutil.which(tool) is None:
                problems[tool] = f"{tool} is missing; install it with apt-get install -y {package}"
    problems.update(ensureNodeMediaServer())
    return problems


def ensureNodeMediaServer() -> dict[str, str]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return {"node-media-server": "node and npm are missing; apt-get install -y nodejs npm"}
    package = NODE_DIR / "node_modules" / "node-media-server" / "package.json"
    if package.exists() and json.loads(package.read_text())["version"] == NMS_VERSION:
        return {}
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(NODE_DIR),
         f"node-media-server@{NMS_VERSION}"], capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or not package.exists():
        return {"node-media-server": f"npm install node-media-server@{NMS_VERSION} failed: "
                                     f"{(result.stderr or result.stdout).strip()[-400:]}"}
    return {}


def opensslSpeed(cipher: str, seconds: int = 1) -> float:
    """
    Bytes per second of one core encrypting 16 KiB blocks with C{cipher}.
    """
    out = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "-bytes", "16384",
                          "-evp", cipher], capture_output=True, text=True, check=True).stdout
    line = [line for line in out.splitlines() if line.lower().startswith(cipher.lower())][-1]
    value = line.split()[-1]
    return float(value.rstrip("k")) * 1000


class Nginx:
    """
    nginx with one worker, serving files over HTTPS with the given key and
    certificate.
    """

    def __init__(self, root: Path, key: str, cert: str, fileSize: int = 0) -> None:
        self.root = root
        self.port = freePort()
        root.mkdir(parents=True, exist_ok=True)
        www = root / "www"
        www.mkdir(exist_ok=True)
        # Started as root, nginx runs its worker as an unprivileged user, which
        # gets 403 Permission denied under the mode 0700 tempRoot() directories.
        readable = [root, www]
        if root.parent.name.startswith("mrs-bench-"):
            readable.append(root.parent)
        for directory in readable:
            os.chmod(directory, 0o755)  # noqa: S103 - test files, loopback only
        (www / "small").write_bytes(b"x" * 100)
        if fileSize:
            with open(www / "big.bin", "wb") as f:
                f.truncate(fileSize)
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (root / name).mkdir(exist_ok=True)
        (root / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
master_process on;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_timeout 600s;
    keepalive_requests 1000000;
    client_header_timeout 600s;
    server {{
        listen 127.0.0.1:{self.port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        root {www};
    }}
}}
""")
        self.process = subprocess.Popen(
            ["nginx", "-c", str(root / "nginx.conf"), "-p", str(root), "-e",
             str(root / "error.log")], preexec_fn=raiseFileLimit)
        waitForPort(self.port, 20, self.process)
        deadline = time.monotonic() + 10
        while len(self.pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    def pids(self) -> list[int]:
        return descendants(self.process.pid)

    def workerPids(self) -> list[int]:
        return [p for p in self.pids() if p != self.process.pid]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def nginxSendCost(root: Path, key: str, cert: str, size: int) -> float:
    """
    nginx's CPU seconds per GB sent to curl over HTTPS (TLS 1.3, AES-256-GCM).
    """
    nginx = Nginx(root, key, cert, fileSize=size)
    try:
        meter = Meter(nginx.pids())
        meter.start()
        got = subprocess.run(["curl", "-s", "--cacert", cert, "-o", "/dev/null", "-w",
                              "%{size_download}", f"https://127.0.0.1:{nginx.port}/big.bin"],
                             capture_output=True, text=True).stdout
        meter.stop()
        if got.strip() != str(size):
            raise RuntimeError(f"curl fetched {got!r} bytes of {size} from nginx")
        return meter.cpu / (size / 1e9)
    finally:
        nginx.stop()


def writtenBytes(pid: int) -> int:
    """
    Bytes process C{pid} has written so far (C{wchar} in /proc/PID/io).
    """
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/io has no wchar line")


def socatReceiveCost(root: Path, key: str, cert: str, size: int) -> float:
    """
    socat's CPU seconds per GB received over TLS (written to /dev/null),
    from a Python sender.  The byte count is what socat wrote to /dev/null.
    """
    import socket
    import ssl

    port = freePort()
    receiver = subprocess.Popen(
        ["socat", "-u", f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={cert},"
         f"key={key},verify=0", "OPEN:/dev/null"], stderr=subprocess.DEVNULL)
    try:
        context = ssl.create_default_context(cafile=cert)
        deadline = time.monotonic() + 10
        while True:
            try:
                raw = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        block = bytes(256 * 1024)
        sent = size // len(block) * len(block)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            meter = Meter([receiver.pid])
            written = writtenBytes(receiver.pid)
            meter.start()
            for _ in range(size // len(block)):
                tls.sendall(block)
            # Wait until socat has written everything, so that the close
            # below (a reset, because socat's session tickets are never read)
            # cannot discard data in its receive buffer.
            deadline = time.monotonic() + 30
            while (received := writtenBytes(receiver.pid) - written) < sent:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"socat wrote {received} of {sent} bytes in 30 s")
                time.sleep(0.01)
            meter.stop()
        receiver.wait(timeout=30)
        return meter.cpu / (received / 1e9)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()


def handshakeRate(port: int, seconds: float, pids: list[int], clients: int = 2
                  ) -> tuple[float, float]:
    """
    Run C{clients} C{openssl s_time -new} loops against C{port}; return
    full handshakes per second of the server's CPU time, and the server's
    CPU share.
    """
    meter = Meter(pids)
    meter.start()
    runs = [subprocess.Popen(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new",
                              "-time", str(int(seconds))], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True) for _ in range(clients)]
    total = 0
    for run in runs:
        out, _ = run.communicate(timeout=seconds + 60)
        match = re.search(r"(\d+) connections in [\d.]+s", out)
        if match:
            total += int(match.group(1))
    meter.stop()
    return (total / meter.cpu if meter.cpu else 0.0), meter.share


class NodeMediaServer:
    """
    node-media-server with RTMPS in and HTTPS-FLV out on 127.0.0.1, its
    admin console and authentication off, fed by ffmpeg from a padded
    H.264 file (C{-re -c copy}).
    """

    def __init__(self, root: Path, key: str, cert: str, h264: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.httpsPort = freePort()
        self.rtmpsPort = freePort()
        config = {
            "bind": "127.0.0.1",
            "notify": {"url": ""},
            "store": {"path": str(root / "data"), "maxHistory": 100},
            "auth": {"play": False, "publish": False, "secret": "bench"},
            "rtmp": {"port": freePort()},
            "rtmps": {"port": self.rtmpsPort, "key": key, "cert": cert},
            "http": {"port": freePort()},
            "https": {"port": self.httpsPort, "key": key, "cert": cert},
            "webadmin": {"enable": False},
            "record": {"auto": False, "path": str(root / "record")},
        }
        (root / "config.json").write_text(json.dumps(config))
        app = NODE_DIR / "node_modules" / "node-media-server" / "bin" / "app.js"
        self.log = open(root / "nms.log", "wb")
        self.process = subprocess.Popen(
            ["node", str(app), "-c", str(root / "config.json"), "--no-admin"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=root, preexec_fn=raiseFileLimit)
        waitForPort(self.httpsPort, 30, self.process)
        waitForPort(self.rtmpsPort, 30, self.process)
        self.ffmpeg = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-re", "-framerate", "25",
             "-f", "h264", "-i", str(h264), "-c", "copy", "-f", "flv",
             f"rtmps://127.0.0.1:{self.rtmpsPort}/live/bench"],
            stdout=subprocess.DEVNULL, stderr=open(root / "ffmpeg.log", "wb"))
        time.sleep(2.0)
        if self.ffmpeg.poll() is not None:
            raise RuntimeError(f"ffmpeg exited with status {self.ffmpeg.returncode}: "
                               f"{(root / 'ffmpeg.log').read_text()[-400:]}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        for process in (self.ffmpeg, self.process):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.log.close()


def paddedFile(path: Path, size: int, seconds: float) -> Path:
    """
    Write the padded sample, repeated to last C{seconds} at 25 frames per
    second.  ffmpeg's C{-stream_loop} fails on raw H.264 input here
    ("Operation not permitted" after the first pass), so the file is long
    instead.
    """
    from bench.loadgen import paddedUnits

    units = [unit for unit, _ in paddedUnits(size)]
    count = int(seconds * 25)
    with open(path, "wb") as f:
        for i in range(count):
            f.write(units[i % len(units)])
    return path


def tempRoot(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"mrs-bench-{name}-"))


def versions() -> dict[str, Any]:
    return {"node-media-server": NMS_VERSION}
