"""
The twistd plugin, command-line options, configuration loading and the
service tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from twisted.application.service import IServiceMaker, MultiService
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from mrs.config import SCHEMA, ConfigError, describeSettings, loadConfig
from mrs.tap import Options, makeService

ROOT = Path(__file__).resolve().parent.parent


class PluginTests(SynchronousTestCase):
    def test_discoverable(self) -> None:
        """
        Twisted's plugin scan finds the mrs tap, pointing at mrs.tap.
        """
        makers = {p.tapname: p for p in getPlugins(IServiceMaker)}
        self.assertIn("mrs", makers)
        self.assertEqual(makers["mrs"].module, "mrs.tap")

    def test_noPluginsPackageInit(self) -> None:
        """
        twisted/plugins has no __init__.py: one would hide Twisted's own
        plugins.
        """
        self.assertFalse((ROOT / "twisted" / "plugins" / "__init__.py").exists())

    def test_twistdHelpListsMrs(self) -> None:
        """
        C{twistd --help} in a subprocess lists the mrs command.
        """
        twistd = Path(sys.executable).with_name("twistd")
        output = subprocess.run([str(twistd), "--help"], capture_output=True, text=True,
                                timeout=60, check=True).stdout
        self.assertRegex(output, r"\n\s+mrs\s+Relay live video")


class ConfigTests(SynchronousTestCase):
    def write(self, text: str) -> str:
        path = self.mktemp()
        Path(path).write_text(text)
        return path

    def test_defaults(self) -> None:
        config = loadConfig(None)
        self.assertEqual(config.client_port, "tcp:12650")
        self.assertEqual(config.client_tls_port, "tcp:12651")
        self.assertEqual(config.admin_port, "tcp:12654")
        self.assertEqual(config.min_tls_version, "1.2")
        self.assertEqual(config.allow_plaintext, False)
        self.assertEqual(config.server_names, ("localhost", "127.0.0.1", "::1"))

    def test_sampleFileIsComplete(self) -> None:
        """
        etc/mrs.ini contains every key with its default, as generated from the
        schema, and loads to the defaults.
        """
        sample = (ROOT / "etc" / "mrs.ini").read_text()
        self.assertEqual(sample, describeSettings())
        self.assertEqual(loadConfig(str(ROOT / "etc" / "mrs.ini")).values,
                         loadConfig(None).values)

    def test_missingFile(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            loadConfig("/nonexistent/mrs.ini")
        self.assertEqual(str(caught.exception),
                         "/nonexistent/mrs.ini: configuration file not found; create it from "
                         "etc/mrs.ini in the source tree or pass --config with the right path")

    def test_missingDefaultFileIsOptional(self) -> None:
        config = loadConfig("/nonexistent/mrs.ini", required=False)
        self.assertEqual(config.source, "built-in defaults")

    def test_unknownKey(self) -> None:
        path = self.write("[listen]\nclient_prot = 1\n")
        with self.assertRaises(ConfigError) as caught:
            loadConfig(path)
        self.assertEqual(str(caught.exception),
                         f"{path}: [listen] client_prot: unknown key; accepted keys in "
                         f"[listen]: client_port, client_tls_port, admin_port")

    def test_keyInWrongSection(self) -> None:
        path = self.write("[server]\nclient_port = 1\n")
        with self.assertRaises(ConfigError) as caught:
            loadConfig(path)
        self.assertIn("[server] client_port: unknown key (it belongs in [listen])",
                      str(caught.exception))

    def test_unknownSection(self) -> None:
        path = self.write("[listner]\nclient_port = 1\n")
        with self.assertRaises(ConfigError) as caught:
            loadConfig(path)
        self.assertEqual(str(caught.exception),
                         f"{path}: unknown section [listner]; accepted sections: admin, listen, "
                         f"metrics, protocol, relay, server, store, tls")

    def test_badValues(self) -> None:
        """
        Each kind of bad value is named with the file, section, key, value
        and what is accepted.
        """
        cases = [
            ("tls", "allow_plaintext", "maybe",
             "expected one of: true, false, yes, no, on, off, 1, 0"),
            ("tls", "min_tls_version", "1.4", "expected one of: 1.0, 1.1, 1.2, 1.3"),
            ("listen", "client_port", "70000", "expected a port from 1 to 65535"),
            ("listen", "client_port", "udp:5", "expected a port number or a TCP endpoint "
             "description such as tcp:12650 or tcp:12650:interface=127.0.0.1 or tcp6:12650"),
            ("protocol", "max_frame_size", "-1", "expected a whole number greater than 0"),
            ("protocol", "max_frame_size", "lots", "expected a whole number greater than 0"),
            ("protocol", "keepalive_interval", "nan", "expected a number of seconds greater "
             "than 0"),
            ("server", "time_zone", "Mars/Base",
             "expected an IANA time zone name such as UTC or Europe/Ljubljana"),
            ("server", "server_names", "bad_name!", "'bad_name!' is not a valid host name "
             "or IP address"),
            ("metrics", "metrics_addresses", "10.0.0.0/33",
             "'10.0.0.0/33' is not an IP address or network such as 10.0.0.0/8"),
        ]
        for section, key, value, accepted in cases:
            path = self.write(f"[{section}]\n{key} = {value}\n")
            with self.assertRaises(ConfigError) as caught:
                loadConfig(path)
            self.assertEqual(str(caught.exception),
                             f"{path}: [{section}] {key} = {value!r} is invalid: {accepted}")

    def test_syntaxError(self) -> None:
        path = self.write("client_port = 1\n")
        with self.assertRaises(ConfigError) as caught:
            loadConfig(path)
        self.assertTrue(str(caught.exception).startswith(f"{path}: not a valid INI file: "))

    def test_commandLineOverrides(self) -> None:
        path = self.write("[listen]\nclient_port = 1000\nadmin_port = 2000\n")
        config = loadConfig(path, {"client_port": "3000"})
        self.assertEqual((config.client_port, config.admin_port), ("tcp:3000", "tcp:2000"))

    def test_commandLineErrorNamesOption(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            loadConfig(None, {"idle_timeout": "soon"})
        self.assertEqual(str(caught.exception), "command line: --idle-timeout = 'soon' is "
                                                "invalid: expected a number of seconds greater "
                                                "than 0")


class OptionsTests(SynchronousTestCase):
    def test_everyKeyHasAnOption(self) -> None:
        """
        Each configuration key can be set on the twistd command line.
        """
        options = Options()
        longNames = {o[0] for o in options.optParameters}
        for setting in SCHEMA:
            if setting.key == "server_names":
                continue
            name = {"data_dir": "data-dir"}.get(setting.key, setting.option)
            self.assertIn(name, longNames)

    def test_serverNameRepeatable(self) -> None:
        options = Options()
        options.parseOptions(["--server-name", "a.example", "--server-name", "10.1.2.3",
                              "--client-port", "12000", "--data-dir", "/tmp/x"])
        self.assertEqual(options.config.server_names, ("a.example", "10.1.2.3"))
        self.assertEqual(options.config.client_port, "tcp:12000")
        self.assertEqual(options.config.data_dir, "/tmp/x")

    def test_badOptionIsUsageError(self) -> None:
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--client-port", "nope"])
        self.assertIn("--client-port = 'nope' is invalid", str(caught.exception))

    def test_missingConfigIsUsageError(self) -> None:
        with self.assertRaises(usage.UsageError):
            Options().parseOptions(["--config", "/nonexistent.ini"])


class ServiceTreeTests(SynchronousTestCase):
    def test_orderAndNames(self) -> None:
        """
        makeService builds one MultiService whose children are, in order,
        the store, TLS material, permissions, hub, client listeners, admin
        site and metrics.  Building it touches no port and no file.
        """
        dataDir = self.mktemp()
        path = self.mktemp()
        Path(path).write_text(f"[server]\ndata_dir = {dataDir}\n")
        options = Options()
        options.parseOptions(["--config", path])
        reactor = MemoryReactorClock()
        service = makeService(options, reactor)
        self.assertIsInstance(service, MultiService)
        names = [child.name for child in service]  # type: ignore[attr-defined]
        self.assertEqual(names, ["store", "tls", "permissions", "hub", "client listeners",
                                 "admin web site", "metrics"])
        self.assertFalse(os.path.exists(dataDir))
        self.assertEqual(reactor.tcpServers, [])


class StartupFailureTests(SynchronousTestCase):
    def test_portInUse(self) -> None:
        """
        A client port already in use stops the server with one line naming
        the port, no traceback, exit status 1, and no admin account created
        (so the one-time password is shown by the next, working start).
        """
        import socket

        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        work = Path(self.mktemp())
        work.mkdir()
        twistd = Path(sys.executable).with_name("twistd")
        result = subprocess.run(
            [str(twistd), "--nodaemon", "--pidfile=", "mrs", "--data-dir", str(work / "var"),
             "--client-port", f"tcp:{busy}:interface=127.0.0.1",
             "--client-tls-port", "tcp:0:interface=127.0.0.1",
             "--admin-port", "tcp:0:interface=127.0.0.1"],
            capture_output=True, text=True, timeout=60, cwd=str(work))
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertIn(f"client listeners failed to start: Couldn't listen on 127.0.0.1:{busy}",
                      output)
        self.assertNotIn("Traceback", output)
        self.assertNotIn("one-time password", output)
