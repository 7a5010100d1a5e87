"""
Validation and audit wording shared by every store implementation, so the
memory store and the SQL stores raise the same errors and write the same
audit entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mrs.store.errors import InvalidValue
from mrs.store.models import GROUP_KINDS, ROLES, Schedule, validateName

SUBJECT_KINDS: tuple[str, ...] = ("user", "user_group")
TARGET_KINDS: tuple[str, ...] = ("device", "device_group")

#: Words for each kind of object in messages.
KIND_LABELS: dict[str, str] = {
    "user": "user",
    "device": "device",
    "user_group": "user group",
    "device_group": "device group",
}

MAX_DISPLAY_NAME = 100
MAX_LABEL = 100
MAX_SETTING_KEY = 100


def objectName(kind: str, name: object) -> str:
    """
    Name an object in the audit log, such as C{"user:alice"} or C{"rule:7"}.
    """
    return f"{kind}:{name}"


def groupObjectKind(kind: str) -> str:
    """
    Map a group kind (C{"user"} or C{"device"}) to C{"user_group"} or
    C{"device_group"}, the kind used in rules and audit object names.
    """
    return f"{kind}_group"


def auditDetail(**values: Any) -> str:
    """
    Encode an audit entry's detail as compact JSON with sorted keys.

    Callers pass only non-secret values: never a password, secret or hash.
    """
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def scheduleDetail(schedule: Schedule | None) -> dict[str, Any] | None:
    """
    Describe a schedule for an audit entry, or L{None} for "always".
    """
    if schedule is None:
        return None
    return {"days": sorted(schedule.days), "start": schedule.start, "end": schedule.end}


def ruleDetail(
    subjectKind: str,
    subject: str,
    targetKind: str,
    target: str,
    rights: Iterable[str],
    schedule: Schedule | None,
) -> str:
    """
    Describe a rule for the audit entries of C{rule.add} and C{rule.remove}.
    """
    return auditDetail(
        subject=objectName(subjectKind, subject),
        target=objectName(targetKind, target),
        rights=sorted(rights),
        schedule=scheduleDetail(schedule),
    )


def validateRole(role: object) -> str:
    """
    @raise InvalidValue: unless C{role} is one of L{ROLES}.
    """
    if role not in ROLES:
        raise InvalidValue("role", str(role), f"use one of: {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def validateGroupKind(kind: object) -> str:
    """
    @raise InvalidValue: unless C{kind} is C{"user"} or C{"device"}.
    """
    if kind not in GROUP_KINDS:
        raise InvalidValue("group kind", str(kind), f"use one of: {', '.join(GROUP_KINDS)}")
    return kind  # type: ignore[return-value]


def validateSubject(kind: object, name: object) -> tuple[str, str]:
    """
    Check a rule's subject kind and name.

    @raise InvalidValue: for an unknown kind or a bad name.
    """
    if kind not in SUBJECT_KINDS:
        raise InvalidValue("subject kind", str(kind), f"use one of: {', '.join(SUBJECT_KINDS)}")
    return kind, validateName(KIND_LABELS[kind], name)  # type: ignore[arg-type,index]


def validateTarget(kind: object, name: object) -> tuple[str, str]:
    """
    Check a rule's target kind and name.

    @raise InvalidValue: for an unknown kind or a bad name.
    """
    if kind not in TARGET_KINDS:
        raise InvalidValue("target kind", str(kind), f"use one of: {', '.join(TARGET_KINDS)}")
    return kind, validateName(KIND_LABELS[kind], name)  # type: ignore[arg-type,index]


def validateSchedule(schedule: object) -> Schedule | None:
    """
    @raise InvalidValue: unless C{schedule} is a L{Schedule} or L{None}.
    """
    if schedule is not None and not isinstance(schedule, Schedule):
        raise InvalidValue("schedule", repr(schedule), "give a Schedule or None")
    return schedule


def _validateText(kind: str, value: object, maximum: int, allowEmpty: bool) -> str:
    if not isinstance(value, str):
        raise InvalidValue(kind, repr(value), "give text")
    if not allowEmpty and not value.strip():
        raise InvalidValue(kind, value, "give a non-empty text")
    if len(value) > maximum:
        raise InvalidValue(kind, value[:20] + "...", f"use at most {maximum} characters")
    if any(not character.isprintable() for character in value):
        raise InvalidValue(kind, value, "remove the control characters")
    return value


def validateDisplayName(value: object) -> str:
    """
    Check a device's display name: up to 100 printable characters.

    @raise InvalidValue: naming the value and the rule.
    """
    return _validateText("display name", value, MAX_DISPLAY_NAME, allowEmpty=True)


def validateLabel(value: object) -> str:
    """
    Check an API token's label: 1 to 100 printable characters.

    @raise InvalidValue: naming the value and the rule.
    """
    return _validateText("token label", value, MAX_LABEL, allowEmpty=False)


def validateSettingKey(value: object) -> str:
    """
    Check a setting's key: 1 to 100 printable characters.

    @raise InvalidValue: naming the value and the rule.
    """
    return _validateText("setting key", value, MAX_SETTING_KEY, allowEmpty=False)


def validateActor(value: object) -> str:
    """
    Check the actor of a change: a non-empty text of up to 100 characters.

    @raise InvalidValue: naming the value and the rule.
    """
    return _validateText("actor", value, 100, allowEmpty=False)


def validateHash(kind: str, value: object) -> str:
    """
    Check that a password, secret or token hash is a non-empty text.

    The value itself never appears in the message.

    @raise InvalidValue: naming the kind.
    """
    if not isinstance(value, str) or not value:
        raise InvalidValue(kind, "", "give the hash as a non-empty text")
    return value


def validateLimit(limit: object) -> int:
    """
    @raise InvalidValue: unless C{limit} is a whole number from 1 to 10000.
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10000:
        raise InvalidValue("audit limit", str(limit), "use a whole number from 1 to 10000")
    return limit


def encodeDays(days: Iterable[int]) -> str:
    """
    Store schedule days as text such as C{"0,1,2,3,4"} (0 is Monday).
    """
    return ",".join(str(day) for day in sorted(days))


def decodeDays(text: str) -> frozenset[int]:
    """
    Read schedule days written by L{encodeDays}.
    """
    return frozenset(int(day) for day in text.split(",") if day)


def encodeRights(rights: Iterable[str]) -> str:
    """
    Store rights as sorted, comma-separated text.
    """
    return ",".join(sorted(rights))


def decodeRights(text: str) -> frozenset[str]:
    """
    Read rights written by L{encodeRights}.
    """
    return frozenset(right for right in text.split(",") if right)


DUPLICATE_RULE_FIX = (
    "it has the same subject, target and schedule; change that rule's rights instead"
)
DUPLICATE_TOKEN_FIX = "generate a new token"  # noqa: S105


def _validateId(kind: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidValue(kind, str(value), "use a whole number from 1 up")
    return value


def validateRuleId(value: object) -> int:
    """
    @raise InvalidValue: unless C{value} is a positive L{int}.
    """
    return _validateId("rule id", value)


def validateTokenId(value: object) -> int:
    """
    @raise InvalidValue: unless C{value} is a positive L{int}.
    """
    return _validateId("API token id", value)


def validateAuditEntry(actor: object, action: object, object: object, detail: object) -> None:
    """
    Check an audit entry written by L{IStore.audit}.

    @raise InvalidValue: for an empty actor, action or object, or a detail
        that is not text.
    """
    validateActor(actor)
    _validateText("audit action", action, 100, allowEmpty=False)
    _validateText("audit object", object, 200, allowEmpty=False)
    if not isinstance(detail, str):
        raise InvalidValue("audit detail", repr(detail), "give text, such as JSON")
