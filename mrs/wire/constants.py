"""
Numbers and names fixed by version 1 of the MRS wire protocol.

C{docs/protocol.rst} describes each of them; this module is the one place
the code reads them from.
"""

from __future__ import annotations

import struct
from typing import Final

#: The first four bytes a client sends, before its first frame.
PREAMBLE: Final = b"\x89MRS"

#: Protocol versions this codec implements, in order of preference.
SUPPORTED_VERSIONS: Final[tuple[int, ...]] = (1,)

# Frame header: type, reserved flags, reserved, payload length.
FRAME_HEADER: Final = struct.Struct(">BBHI")
FRAME_HEADER_SIZE: Final = FRAME_HEADER.size
FRAME_CONTROL: Final = 0x01
FRAME_MEDIA: Final = 0x02
FRAME_TYPE_NAMES: Final[dict[int, str]] = {FRAME_CONTROL: "control", FRAME_MEDIA: "media"}

# Media header inside a media frame's payload: track, codec, flags,
# reserved, source, timestamp in microseconds.
MEDIA_HEADER: Final = struct.Struct(">BBBBIQ")
MEDIA_HEADER_SIZE: Final = MEDIA_HEADER.size
# Frame header and media header together, packed or unpacked in one call.
MEDIA_FRAME_HEADER: Final = struct.Struct(">BBHIBBBBIQ")
MEDIA_FRAME_HEADER_SIZE: Final = MEDIA_FRAME_HEADER.size

#: Default maximum payload size of one frame, in bytes (8 MiB).
DEFAULT_MAX_FRAME_SIZE: Final = 8 * 1024 * 1024

MAX_UINT32: Final = 2**32 - 1
MAX_UINT64: Final = 2**64 - 1

TRACK_VIDEO: Final = 1
TRACK_AUDIO: Final = 2
TRACK_TALK: Final = 3
#: Media track numbers and their names in control messages.
TRACK_NAMES: Final[dict[int, str]] = {
    TRACK_VIDEO: "video",
    TRACK_AUDIO: "audio",
    TRACK_TALK: "talk",
}
TRACK_NUMBERS: Final[dict[str, int]] = {name: number for number, name in TRACK_NAMES.items()}

#: Track names a device announces and a monitor subscribes to; location
#: travels in control messages, never in media frames.
ANNOUNCE_TRACKS: Final[tuple[str, ...]] = ("video", "audio", "location", "talk")
SUBSCRIBE_TRACKS: Final[tuple[str, ...]] = ("video", "audio", "location")

CODEC_H264: Final = 1
CODEC_H265: Final = 2
CODEC_MJPEG: Final = 3
CODEC_AAC: Final = 16
CODEC_OPUS: Final = 17
CODEC_PCMU: Final = 18
CODEC_PCMA: Final = 19
#: Codec numbers and their names in control messages.
CODEC_NAMES: Final[dict[int, str]] = {
    CODEC_H264: "h264",
    CODEC_H265: "h265",
    CODEC_MJPEG: "mjpeg",
    CODEC_AAC: "aac",
    CODEC_OPUS: "opus",
    CODEC_PCMU: "pcmu",
    CODEC_PCMA: "pcma",
}
CODEC_NUMBERS: Final[dict[str, int]] = {name: number for number, name in CODEC_NAMES.items()}
VIDEO_CODECS: Final = frozenset({CODEC_H264, CODEC_H265, CODEC_MJPEG})
AUDIO_CODECS: Final = frozenset({CODEC_AAC, CODEC_OPUS, CODEC_PCMU, CODEC_PCMA})
#: The codecs legal on each media track.
TRACK_CODECS: Final[dict[int, frozenset[int]]] = {
    TRACK_VIDEO: VIDEO_CODECS,
    TRACK_AUDIO: AUDIO_CODECS,
    TRACK_TALK: AUDIO_CODECS,
}

FLAG_KEYFRAME: Final = 0x01
FLAG_CONFIG: Final = 0x02
FLAG_DISCONTINUITY: Final = 0x04
FLAG_NAMES: Final[dict[int, str]] = {
    FLAG_KEYFRAME: "keyframe",
    FLAG_CONFIG: "config",
    FLAG_DISCONTINUITY: "discontinuity",
}
KNOWN_FLAGS: Final = FLAG_KEYFRAME | FLAG_CONFIG | FLAG_DISCONTINUITY

ROLES: Final[tuple[str, ...]] = ("device", "monitor")

#: Rights a rule grants a user on a device (as in the store).
RIGHTS: Final[tuple[str, ...]] = ("video", "audio", "location", "control", "talk")

#: Events the server sends to monitors.  Clients ignore names they lack.
EVENT_NAMES: Final[tuple[str, ...]] = (
    "device_online",
    "device_offline",
    "device_reconnecting",
    "stream_restarted",
    "tracks_changed",
    "device_added",
    "device_removed",
)

#: Every error code of version 1 and whether it closes the connection.
ERROR_CODES: Final[dict[str, bool]] = {
    "bad_magic": True,
    "unsupported_version": True,
    "frame_too_large": True,
    "bad_frame": True,
    "bad_json": False,
    "bad_message": False,
    "out_of_range": False,
    "unknown_type": False,
    "not_allowed_now": False,
    "tls_required": False,
    "already_encrypted": False,
    "auth_failed": False,
    "throttled": True,
    "login_timeout": True,
    "idle_timeout": True,
    "permission_denied": False,
    "unknown_device": False,
    "device_offline": False,
    "not_subscribed": False,
    "replaced": True,
    "account_disabled": True,
    "credentials_changed": True,
    "logged_out": True,
    "congested": True,
    "server_shutdown": True,
    "timeout": False,
    "internal_error": False,
}
FATAL_ERROR_CODES: Final = frozenset(code for code, fatal in ERROR_CODES.items() if fatal)

#: Longest C{id} string, and the largest integer C{id} (2**53 - 1, the
#: largest integer a JavaScript number represents exactly).
MAX_ID_LENGTH: Final = 64
MAX_ID_INTEGER: Final = 2**53 - 1
