"""
The server status shown on the dashboard and returned by the API: the
hub's live sessions, the uptime and the certificate, as plain JSON values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TRACK_ORDER: tuple[str, ...] = ("video", "audio", "talk", "location")


def _read(entry: object, name: str, default: Any = None) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(name, default)
    return getattr(entry, name, default)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _perTrack(entry: object, name: str) -> dict[str, float]:
    """
    Read a per-track number either as C{entry.<name>} (a mapping of track
    to value) or from C{entry.tracks[track].<name>}.
    """
    result: dict[str, float] = {}
    direct = _read(entry, name)
    if isinstance(direct, Mapping):
        for track, value in direct.items():
            number = _number(value)
            if number is not None:
                result[str(track)] = number
    tracks = _read(entry, "tracks")
    if isinstance(tracks, Mapping):
        for track, values in tracks.items():
            number = _number(_read(values, name))
            if number is not None:
                result[str(track)] = number
    return dict(sorted(result.items(), key=lambda kv: _trackKey(kv[0])))


def _trackKey(track: str) -> tuple[int, str]:
    if track in TRACK_ORDER:
        return (TRACK_ORDER.index(track), track)
    return (len(TRACK_ORDER), track)


def _location(entry: object) -> dict[str, float] | None:
    location = _read(entry, "lastLocation")
    if location is None:
        return None
    lat = _number(_read(location, "lat"))
    lon = _number(_read(location, "lon"))
    if lat is None or lon is None:
        return None
    return {"lat": lat, "lon": lon}


def sessionStatus(entry: object, now: float) -> dict[str, Any]:
    """
    Convert one entry of C{hub.statusSnapshot()} (an object or a mapping)
    into JSON values.  Missing fields come out as L{None} or empty.

    Per-track bit rates are read from C{bitrateIn}/C{bitrateOut} mappings
    or from C{tracks[name]}; the location age from C{lastLocationAge} or
    C{lastLocationTime}; a monitor's C{subscriptions} maps device ids to
    tracks.
    """
    since = _number(_read(entry, "since"))
    locationTime = _number(_read(entry, "lastLocationTime"))
    subscribers = _read(entry, "subscribers", 0)
    if not isinstance(subscribers, int):
        try:
            subscribers = len(subscribers)
        except TypeError:
            subscribers = 0
    location = _location(entry)
    locationAge = _number(_read(entry, "lastLocationAge"))
    if locationAge is None and location is not None and locationTime is not None:
        locationAge = max(0.0, now - locationTime)
    subscriptions = _read(entry, "subscriptions") or {}
    dropped = _number(_read(entry, "droppedFrames"))
    return {
        "role": str(_read(entry, "role", "")),
        "name": str(_read(entry, "name", "") or ""),
        "address": str(_read(entry, "address", "") or ""),
        "encrypted": bool(_read(entry, "encrypted", False)),
        "tlsVersion": _read(entry, "tlsVersion") or None,
        "cipher": _read(entry, "cipher") or None,
        "since": since,
        "connectedSeconds": None if since is None else max(0.0, now - since),
        "bitrateIn": _perTrack(entry, "bitrateIn"),
        "bitrateOut": _perTrack(entry, "bitrateOut"),
        "subscribers": subscribers,
        "lastLocation": location,
        "lastLocationAge": None if location is None else locationAge,
        "subscriptions": sorted(str(device) for device in subscriptions),
        "droppedFrames": 0 if dropped is None else int(dropped),
    }


def currentPair(tls: Any) -> Any:
    """
    Return C{tls.current} (the pair being served), or L{None} while the
    TLS material is not loaded yet.
    """
    try:
        return tls.current
    except Exception:  # mrs.tls.NotReady, before TLSMaterial.whenReady fires
        return None


def certificateStatus(tls: Any) -> dict[str, Any] | None:
    """
    Describe the certificate being served, or L{None} before one is loaded.
    """
    info = getattr(currentPair(tls), "info", None)
    if info is None:
        return None
    return {
        "subject": str(info.subject),
        "issuer": str(info.issuer),
        "sans": [str(name) for name in info.sans],
        "notBefore": info.notBefore.isoformat(),
        "notAfter": info.notAfter.isoformat(),
        "sha256": str(info.sha256),
        "keyDescription": str(getattr(info, "keyDescription", "")),
        "selfSigned": bool(getattr(info, "selfSigned", False)),
        "daysToExpiry": round(float(tls.daysToExpiry()), 2),
    }


def serverStatus(admin: Any) -> dict[str, Any]:
    """
    Return the whole dashboard status as JSON values.
    """
    now = admin.reactor.seconds()
    sessions = [sessionStatus(entry, now) for entry in admin.hub.statusSnapshot()]
    sessions.sort(key=lambda s: (s["role"] != "device", s["role"], s["name"], s["address"]))
    return {
        "time": now,
        "uptimeSeconds": max(0.0, now - admin.started),
        "devicesOnline": sum(1 for s in sessions if s["role"] == "device"),
        "monitorsOnline": sum(1 for s in sessions if s["role"] == "monitor"),
        "sessions": sessions,
        "certificate": certificateStatus(admin.tls),
    }


def formatBitrate(bitsPerSecond: float) -> str:
    """
    Format a bit rate in bit/s, kbit/s or Mbit/s.
    """
    if bitsPerSecond >= 1_000_000:
        return f"{bitsPerSecond / 1_000_000:.1f} Mbit/s"
    if bitsPerSecond >= 1000:
        return f"{bitsPerSecond / 1000:.0f} kbit/s"
    return f"{bitsPerSecond:.0f} bit/s"


def formatRates(rates: Mapping[str, float]) -> str:
    """
    Format per-track bit rates as C{"video 1.2 Mbit/s, audio 64 kbit/s"}.
    """
    return ", ".join(f"{track} {formatBitrate(rate)}" for track, rate in rates.items())


def formatLink(session: Mapping[str, Any]) -> str:
    """
    Describe how a client is connected: TLS version and cipher, or
    plaintext.
    """
    if not session["encrypted"]:
        return "plaintext"
    text = " ".join(str(p) for p in (session["tlsVersion"], session["cipher"]) if p)
    return text if text.startswith("TLS") else f"TLS {text}".strip()
