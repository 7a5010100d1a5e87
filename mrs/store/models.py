"""
Records kept by the store.  All are immutable; the store returns new ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from mrs.store.errors import InvalidValue

Role = Literal["admin", "operator"]
ROLES: tuple[str, ...] = ("admin", "operator")

#: The rights a rule can grant a user on a device.
RIGHTS: tuple[str, ...] = ("video", "audio", "location", "control", "talk")

GroupKind = Literal["user", "device"]
GROUP_KINDS: tuple[str, ...] = ("user", "device")

SubjectKind = Literal["user", "user_group"]
TargetKind = Literal["device", "device_group"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def validateName(kind: str, value: str) -> str:
    """
    Check a user, device or group name and return it.

    Names are 1 to 64 characters: ASCII letters, digits and C{. _ @ -},
    starting with a letter or digit.

    @raise InvalidValue: naming the kind, the value and the rule.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidValue(
            kind,
            value,
            "use 1 to 64 characters: letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit",
        )
    return value


def validateRights(rights: object) -> frozenset[str]:
    """
    Check a collection of right names and return it as a frozenset.

    @raise InvalidValue: for an empty set or an unknown right.
    """
    if isinstance(rights, str) or not hasattr(rights, "__iter__"):
        raise InvalidValue("rights", str(rights), "give a list of rights")
    result = frozenset(rights)  # type: ignore[arg-type]
    if not result:
        raise InvalidValue("rights", "", f"give at least one of: {', '.join(RIGHTS)}")
    for right in sorted(result):
        if right not in RIGHTS:
            raise InvalidValue("right", right, f"use one of: {', '.join(RIGHTS)}")
    return result


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    passwordHash: str
    enabled: bool = True
    #: True for the one-time first password: the admin site forces a change.
    mustChangePassword: bool = False
    created: float = 0.0
    changed: float = 0.0
    #: Incremented whenever the password changes or the account is
    #: disabled, so live sessions can tell that they must end.
    credentialsVersion: int = 1


@dataclass(frozen=True)
class Device:
    deviceId: str
    displayName: str
    secretHash: str
    enabled: bool = True
    #: Legacy units that cannot do TLS may be allowed a plaintext link.
    allowPlaintext: bool = False
    created: float = 0.0
    changed: float = 0.0
    credentialsVersion: int = 1


@dataclass(frozen=True)
class Group:
    kind: GroupKind
    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schedule:
    """
    When a rule applies: on the given weekdays (0 is Monday) between
    C{start} and C{end}, as minutes after midnight in the server's
    configured time zone.  C{end} before C{start} spans midnight.
    """

    days: frozenset[int] = frozenset(range(7))
    start: int = 0
    end: int = 24 * 60

    def __post_init__(self) -> None:
        if not self.days or not all(isinstance(d, int) and 0 <= d <= 6 for d in self.days):
            raise InvalidValue("schedule days", str(sorted(self.days)),
                               "use weekday numbers 0 (Monday) to 6 (Sunday)")
        for name, value in (("start", self.start), ("end", self.end)):
            if not 0 <= value <= 24 * 60:
                raise InvalidValue(f"schedule {name}", str(value),
                                   "use minutes after midnight, 0 to 1440")
        if self.start == self.end:
            raise InvalidValue("schedule", f"{self.start // 60:02d}:{self.start % 60:02d} to "
                                           f"{self.end // 60:02d}:{self.end % 60:02d}",
                               "give a start and an end that differ; for the whole day "
                               "use 00:00 to 24:00")

    def covers(self, weekday: int, minute: int) -> bool:
        """
        Tell whether the local C{weekday} and C{minute} of the day fall inside.
        """
        if self.start <= self.end:
            return weekday in self.days and self.start <= minute < self.end
        # Spans midnight: the late part belongs to the day it started on.
        if minute >= self.start:
            return weekday in self.days
        return minute < self.end and (weekday - 1) % 7 in self.days


@dataclass(frozen=True)
class Rule:
    ruleId: int
    subjectKind: SubjectKind
    subject: str
    targetKind: TargetKind
    target: str
    rights: frozenset[str]
    schedule: Schedule | None = None
    created: float = 0.0


@dataclass(frozen=True)
class AuditEntry:
    entryId: int
    time: float
    actor: str
    action: str
    object: str
    detail: str = ""


@dataclass(frozen=True)
class ApiToken:
    tokenId: int
    user: str
    label: str
    #: SHA-256 hex digest of the token; the token itself is never stored.
    tokenHash: str
    created: float = 0.0
    lastUsed: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """
    Everything the permission service needs, read in one transaction.
    """

    generation: int
    users: tuple[User, ...] = ()
    devices: tuple[Device, ...] = ()
    groups: tuple[Group, ...] = ()
    rules: tuple[Rule, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
