"""
C{twistd mrs}: command-line options and the service tree.

L{makeService} reads the configuration and builds one L{MultiService}
whose children start in this order: the store, the TLS material, the
permission service, the relay hub, the client listeners, the admin web
site and the metrics updater.  Each child receives what it needs as
constructor arguments; nothing here is read at import time.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, MultiService
from twisted.python import usage

from mrs import __version__
from mrs.config import SCHEMA, ConfigError, loadConfig

#: Options with a short form or a name other than the INI key.
_NAMED_OPTIONS = {
    "data_dir": ("data-dir", "d"),
    "client_port": ("client-port", None),
    "client_tls_port": ("client-tls-port", None),
    "admin_port": ("admin-port", None),
}


class Options(usage.Options):
    """
    Options of C{twistd mrs}.  Every configuration key has an option of
    the same name with dashes, which overrides the configuration file.
    """

    synopsis = "[options]"
    longdesc = (
        "Run the MRS media relay server: the client ports (plaintext with "
        "STARTTLS, and TLS), the HTTPS admin web UI and its JSON API.  "
        "Settings come from the configuration file (default etc/mrs.ini, "
        "built-in defaults when that file does not exist); options given "
        "here override it."
    )

    optParameters: list[list[Any]] = [
        ["config", "c", None,
         "Configuration file (INI). Default: etc/mrs.ini if it exists."],
    ]
    for _setting in SCHEMA:
        if _setting.key == "server_names":
            continue
        _long, _short = _NAMED_OPTIONS.get(_setting.key, (_setting.option, None))
        optParameters.append(
            [_long, _short, None, f"{_setting.help} [config: {_setting.section}.{_setting.key}, "
                                  f"default: {_setting.default}]"]
        )
    del _setting, _long, _short

    def __init__(self) -> None:
        super().__init__()
        self["server-names"] = []

    def opt_server_name(self, name: str) -> None:
        """
        Host name or IP address clients use to reach this server; repeat
        the option for several (overrides server.server_names).
        """
        self["server-names"].append(name)

    def opt_version(self) -> None:
        """
        Print the MRS version and exit.
        """
        print(f"mrs {__version__}")
        raise SystemExit(0)

    def overrides(self) -> dict[str, str]:
        """
        Return the configuration keys set on the command line, as text.
        """
        result: dict[str, str] = {}
        for setting in SCHEMA:
            if setting.key == "server_names":
                continue
            longName = _NAMED_OPTIONS.get(setting.key, (setting.option, None))[0]
            value = self.get(longName)
            if value is not None:
                result[setting.key] = value
        if self["server-names"]:
            result["server_names"] = ",".join(self["server-names"])
        return result

    def postOptions(self) -> None:
        try:
            self.config = loadConfig(
                self["config"] or "etc/mrs.ini",
                self.overrides(),
                required=self["config"] is not None,
            )
        except ConfigError as e:
            raise usage.UsageError(str(e))


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    Build the server's service tree from parsed L{Options}.

    @param reactor: the reactor to use; the global one when L{None}.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor
    from mrs.server.service import buildServices

    root = MultiService()
    for child in buildServices(options.config, reactor):
        child.setServiceParent(root)
    return root
