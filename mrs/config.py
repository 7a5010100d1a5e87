"""
Server configuration: the INI schema, its loader and the resulting settings.

Every setting is declared once in L{SCHEMA} with its section, type, default
and help text.  The same table drives the INI loader, the C{twistd mrs}
command-line overrides (one C{--key-name} option per key) and the test that
keeps C{etc/mrs.ini} complete.
"""

from __future__ import annotations

import configparser
import ipaddress
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twisted.internet.endpoints import _parseServer  # type: ignore[attr-defined]


class ConfigError(Exception):
    """
    A configuration value is missing, unknown or invalid.

    The message names the file, section and key and lists what is accepted.
    """


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected one of: true, false, yes, no, on, off, 1, 0")


def _positiveInt(text: str) -> int:
    rule = "expected a whole number greater than 0"
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(rule)
    if value <= 0:
        raise ValueError(rule)
    return value


def _seconds(text: str, rule: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(rule)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(rule)
    return value


def _positiveFloat(text: str) -> float:
    rule = "expected a number of seconds greater than 0"
    value = _seconds(text, rule)
    if not value > 0:
        raise ValueError(rule)
    return value


def _nonNegativeFloat(text: str) -> float:
    rule = "expected a number of seconds, 0 or more"
    value = _seconds(text, rule)
    if not value >= 0:
        raise ValueError(rule)
    return value


def endpointDescription(text: str) -> str:
    """
    Normalize a listening option: a bare port number becomes C{tcp:PORT}.

    @raise ValueError: if the text is neither a port nor a TCP endpoint
        description that Twisted can parse.
    """
    text = text.strip()
    if text.isdigit():
        port = int(text)
        if not 0 < port < 65536:
            raise ValueError("expected a port from 1 to 65535")
        return f"tcp:{port}"
    if not (text.startswith("tcp:") or text.startswith("tcp6:")):
        raise ValueError(
            "expected a port number or a TCP endpoint description such as "
            "tcp:12650 or tcp:12650:interface=127.0.0.1 or tcp6:12650"
        )
    try:
        _parseServer(text, None)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"not a valid endpoint description ({e})")
    return text


def _serverNames(text: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in text.replace(",", " ").split() if n.strip())
    if not names:
        raise ValueError("expected one or more host names or IP addresses, separated by commas")
    for name in names:
        try:
            ipaddress.ip_address(name)
            continue
        except ValueError:
            pass
        labels = name.rstrip(".").split(".")
        if not all(
            0 < len(label) <= 63
            and label.replace("-", "").isalnum()
            and not label.startswith("-")
            and label.isascii()
            for label in labels
        ):
            raise ValueError(f"{name!r} is not a valid host name or IP address")
    return names


def _addresses(text: str) -> tuple[str, ...]:
    entries = tuple(a.strip() for a in text.replace(",", " ").split() if a.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network such as 10.0.0.0/8")
    return entries


def _tlsVersion(text: str) -> str:
    text = text.strip()
    if text not in ("1.0", "1.1", "1.2", "1.3"):
        raise ValueError("expected one of: 1.0, 1.1, 1.2, 1.3")
    return text


def _timeZone(text: str) -> str:
    text = text.strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone name such as UTC or Europe/Ljubljana")
    return text


def _keyType(text: str) -> str:
    text = text.strip().lower()
    if text not in ("rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"):
        raise ValueError("expected one of: rsa2048, rsa3072, rsa4096, ec-p256, ec-p384")
    return text


def _database(text: str) -> str:
    text = text.strip()
    if text != "sqlite" and not text.startswith(("postgresql://", "postgres://")):
        raise ValueError("expected sqlite or a PostgreSQL URL such as postgresql://mrs@db/mrs")
    return text


def _string(text: str) -> str:
    return text.strip()


@dataclass(frozen=True)
class Setting:
    """
    One configuration key: where it lives, how to parse it and its default.
    """

    section: str
    key: str
    parse: Callable[[str], Any]
    default: str
    help: str
    restart: bool = True

    @property
    def option(self) -> str:
        """
        The C{twistd mrs} option name that overrides this key.
        """
        return self.key.replace("_", "-")


SCHEMA: tuple[Setting, ...] = (
    Setting("server", "data_dir", _string, "./var",
            "Directory for the database, TLS material and backups; created with mode 0700."),
    Setting("server", "server_names", _serverNames, "localhost, 127.0.0.1, ::1",
            "Host names and IP addresses clients use to reach this server, comma separated; "
            "they go into generated certificates and are checked against installed ones."),
    Setting("server", "time_zone", _timeZone, "UTC",
            "Time zone of the schedules in permission rules (an IANA name).", restart=False),
    Setting("listen", "client_port", endpointDescription, "tcp:12650",
            "Client port, plaintext with a STARTTLS upgrade: a port number or a TCP endpoint."),
    Setting("listen", "client_tls_port", endpointDescription, "tcp:12651",
            "Client port with TLS from the first byte."),
    Setting("listen", "admin_port", endpointDescription, "tcp:12654",
            "HTTPS admin web UI (/admin), JSON API (/api/v1) and metrics (/metrics)."),
    Setting("tls", "min_tls_version", _tlsVersion, "1.2",
            "Lowest TLS version accepted: 1.2 or 1.3; 1.0 and 1.1 only for legacy clients "
            "and logged as a warning."),
    Setting("tls", "allow_plaintext", _bool, "false",
            "Accept logins on unencrypted links (devices may also be allowed one by one)."),
    Setting("tls", "key_type", _keyType, "rsa2048",
            "Key type generated on first start: rsa2048, rsa3072, rsa4096, ec-p256 or ec-p384."),
    Setting("protocol", "max_frame_size", _positiveInt, "8388608",
            "Largest frame a client may send, in bytes; larger frames close the connection."),
    Setting("protocol", "keepalive_interval", _positiveFloat, "10",
            "Seconds between server pings on an idle connection."),
    Setting("protocol", "idle_timeout", _positiveFloat, "30",
            "Seconds without any data from a client before the server closes its connection."),
    Setting("protocol", "login_timeout", _positiveFloat, "15",
            "Seconds a new connection has to complete hello and login."),
    Setting("protocol", "login_failure_delay", _nonNegativeFloat, "1.0",
            "Seconds before a failed login is answered."),
    Setting("protocol", "login_failures_per_minute", _positiveInt, "10",
            "Failed logins allowed per source address per minute before it is throttled."),
    Setting("protocol", "token_lifetime", _positiveFloat, "3600",
            "Seconds a monitor's login token stays valid for logging in again."),
    Setting("relay", "queue_limit", _positiveInt, "8388608",
            "Bytes queued for one monitor before the server drops its audio and video "
            "until the next keyframe."),
    Setting("relay", "congestion_timeout", _positiveFloat, "20",
            "Seconds a monitor may stay congested before it is disconnected.", restart=False),
    Setting("relay", "reconnect_grace", _nonNegativeFloat, "30",
            "Seconds monitors stay subscribed to a device whose connection dropped."),
    Setting("relay", "on_demand_linger", _nonNegativeFloat, "5",
            "Seconds a track keeps streaming after its last subscriber leaves."),
    Setting("relay", "location_always_on", _bool, "true",
            "Ask devices to send location even when nobody watches it."),
    Setting("admin", "session_idle_timeout", _positiveFloat, "1800",
            "Seconds of inactivity after which an admin web session ends."),
    Setting("admin", "session_max_age", _positiveFloat, "43200",
            "Seconds after login at which an admin web session ends regardless of activity."),
    Setting("metrics", "metrics_token", _string, "",
            "Bearer token for /metrics; when empty, only metrics_addresses may read it."),
    Setting("metrics", "metrics_addresses", _addresses, "127.0.0.1, ::1",
            "Addresses or networks allowed to read /metrics without a token."),
    Setting("store", "database", _database, "sqlite",
            "sqlite for a file in the data directory, or a PostgreSQL URL."),
)

SETTINGS_BY_KEY: Mapping[str, Setting] = {s.key: s for s in SCHEMA}


def _accepted(setting: Setting) -> str:
    try:
        setting.parse("\x00invalid\x00")
    except ValueError as e:
        return str(e)
    return "any text"


@dataclass(frozen=True)
class Config:
    """
    Parsed settings, keyed by name; see L{SCHEMA} for each one.
    """

    values: Mapping[str, Any]
    source: str = "built-in defaults"
    explicit: frozenset[str] = field(default_factory=frozenset)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name)

    @property
    def dataDir(self) -> Path:
        return Path(self.values["data_dir"])


def loadConfig(
    path: str | None,
    overrides: Mapping[str, str] | None = None,
    *,
    required: bool = True,
) -> Config:
    """
    Read the INI file at C{path}, apply command-line C{overrides} and
    return the resulting L{Config}.

    @param path: the file to read, or L{None} for the built-in defaults.
    @param overrides: raw text values by key, from the command line.
    @param required: when false, a missing file means built-in defaults.
    @raise ConfigError: for a missing file, a syntax error, an unknown
        section or key, or a value that does not parse.
    """
    if overrides:
        unknown = sorted(set(overrides) - set(SETTINGS_BY_KEY))
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}")
    raw: dict[str, tuple[str, str]] = {}
    source = "built-in defaults"
    if path is not None:
        filePath = Path(path)
        if filePath.exists():
            raw = _readIni(filePath)
            source = str(filePath)
        elif required:
            raise ConfigError(
                f"{path}: configuration file not found; create it from etc/mrs.ini "
                f"in the source tree or pass --config with the right path"
            )
    values: dict[str, Any] = {}
    explicit = set()
    for setting in SCHEMA:
        where = f"{source}: [{setting.section}] {setting.key}"
        text = setting.default
        if setting.key in raw:
            text = raw[setting.key][1]
            explicit.add(setting.key)
        if overrides and setting.key in overrides:
            text = overrides[setting.key]
            where = f"command line: --{setting.option}"
            explicit.add(setting.key)
        try:
            values[setting.key] = setting.parse(text)
        except ValueError as e:
            raise ConfigError(f"{where} = {text.strip()!r} is invalid: {e}")
    if values["idle_timeout"] < 2 * values["keepalive_interval"]:
        raise ConfigError(
            f"{source}: [protocol] idle_timeout = {values['idle_timeout']:g} is invalid: it must "
            f"be at least twice keepalive_interval ({values['keepalive_interval']:g}) so that "
            f"a client has time to answer a ping before it is closed as idle"
        )
    return Config(values=values, source=source, explicit=frozenset(explicit))


def _readIni(path: Path) -> dict[str, tuple[str, str]]:
    parser = configparser.ConfigParser(
        interpolation=None, inline_comment_prefixes=None, default_section="\x00none"
    )
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    try:
        with path.open(encoding="utf-8") as f:
            parser.read_file(f)
    except configparser.Error as e:
        message = str(e).replace("\n", " ")
        raise ConfigError(f"{path}: not a valid INI file: {message}")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the configuration file: {e}")
    sections = sorted({s.section for s in SCHEMA})
    result: dict[str, tuple[str, str]] = {}
    for section in parser.sections():
        if section not in sections:
            raise ConfigError(
                f"{path}: unknown section [{section}]; accepted sections: {', '.join(sections)}"
            )
        for key, value in parser.items(section):
            setting = SETTINGS_BY_KEY.get(key)
            if setting is None or setting.section != section:
                accepted = ", ".join(s.key for s in SCHEMA if s.section == section)
                hint = ""
                if setting is not None:
                    hint = f" (it belongs in [{setting.section}])"
                raise ConfigError(
                    f"{path}: [{section}] {key}: unknown key{hint}; "
                    f"accepted keys in [{section}]: {accepted}"
                )
            result[key] = (section, value)
    return result


def describeSettings(settings: Iterable[Setting] = SCHEMA) -> str:
    """
    Render the schema as the commented sample INI file shipped in C{etc/}.
    """
    lines = [
        "# MRS server configuration.",
        "#",
        "# Every key is shown with its default.  Each key can also be set on the",
        "# command line: `twistd mrs --key-name VALUE` overrides the file.",
        "# Listening options take a port number or a Twisted TCP endpoint",
        "# description such as tcp:12650:interface=127.0.0.1 or tcp6:12650.",
    ]
    section = None
    for setting in settings:
        if setting.section != section:
            section = setting.section
            lines += ["", f"[{section}]"]
        lines.append("")
        for helpLine in _wrap(setting.help):
            lines.append(f"# {helpLine}")
        if not setting.restart:
            lines.append("# Takes effect without a restart.")
        lines.append(f"{setting.key} = {setting.default}")
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int = 74) -> list[str]:
    words = text.split()
    out: list[str] = []
    current = ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        out.append(current)
    return out


def acceptedValues(key: str) -> str:
    """
    Describe what the setting C{key} accepts, for help text.
    """
    return _accepted(SETTINGS_BY_KEY[key])
