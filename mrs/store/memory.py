"""
An in-memory L{IStore} for tests: the same behaviour, errors, audit entries
and generation numbers as the SQL stores, without a database.

The contract tests in C{tests/test_store.py} run against this store and the
SQL stores alike, so this store cannot drift from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from mrs.store import common
from mrs.store.errors import AlreadyExists, InvalidValue, NotFound
from mrs.store.interface import IStore
from mrs.store.models import (
    ApiToken,
    AuditEntry,
    Device,
    Group,
    Rule,
    Schedule,
    Snapshot,
    User,
    validateName,
    validateRights,
)

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _deferred(method: Callable[_P, _T]) -> Callable[_P, Deferred[_T]]:
    """
    Wrap a synchronous method so it returns an already-fired L{Deferred}.
    """

    @wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        try:
            return succeed(method(*args, **kwargs))
        except Exception:
            return fail()

    return wrapper


@implementer(IStore)
class MemoryStore:
    """
    Keep everything in dictionaries.  Nothing survives the object.

    @ivar path: always C{":memory:"}.
    """

    path = ":memory:"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._generation = 0
        self._users: dict[str, User] = {}
        self._devices: dict[str, Device] = {}
        #: Members by group kind and group name.
        self._groups: dict[str, dict[str, set[str]]] = {"user": {}, "device": {}}
        self._rules: dict[int, Rule] = {}
        self._nextRuleId = 1
        self._settings: dict[str, str] = {}
        self._tokens: dict[int, ApiToken] = {}
        self._nextTokenId = 1
        self._auditLog: list[AuditEntry] = []
        self._opened = False

    def _change(self, actor: str, action: str, object: str, detail: str) -> None:
        """
        Record a change: bump the generation and append its audit entry.
        """
        self._generation += 1
        self._appendAudit(actor, action, object, detail)

    def _appendAudit(self, actor: str, action: str, object: str, detail: str) -> AuditEntry:
        entry = AuditEntry(
            entryId=len(self._auditLog) + 1,
            time=self._clock(),
            actor=actor,
            action=action,
            object=object,
            detail=detail,
        )
        self._auditLog.append(entry)
        return entry

    @_deferred
    def open(self) -> None:
        self._opened = True

    @_deferred
    def close(self) -> None:
        self._opened = False

    @_deferred
    def generation(self) -> int:
        return self._generation

    @_deferred
    def snapshot(self) -> Snapshot:
        groups = tuple(
            self._group(kind, name)
            for kind in ("user", "device")
            for name in sorted(self._groups[kind])
        )
        return Snapshot(
            generation=self._generation,
            users=tuple(self._users[name] for name in sorted(self._users)),
            devices=tuple(self._devices[name] for name in sorted(self._devices)),
            groups=groups,
            rules=tuple(self._rules[ruleId] for ruleId in sorted(self._rules)),
        )

    # Users

    def _existingUser(self, name: str) -> User:
        validateName("user", name)
        user = self._users.get(name)
        if user is None:
            raise NotFound("user", name)
        return user

    @_deferred
    def addUser(
        self,
        name: str,
        role: str,
        passwordHash: str,
        actor: str,
        mustChangePassword: bool = False,
    ) -> User:
        validateName("user", name)
        common.validateRole(role)
        common.validateHash("password hash", passwordHash)
        common.validateActor(actor)
        if name in self._users:
            raise AlreadyExists("user", name)
        now = self._clock()
        user = User(
            name=name,
            role=role,  # type: ignore[arg-type]
            passwordHash=passwordHash,
            mustChangePassword=bool(mustChangePassword),
            created=now,
            changed=now,
        )
        self._users[name] = user
        self._change(
            actor,
            "user.add",
            common.objectName("user", name),
            common.auditDetail(role=role, mustChangePassword=bool(mustChangePassword)),
        )
        return user

    @_deferred
    def getUser(self, name: str) -> User | None:
        return self._users.get(name)

    @_deferred
    def listUsers(self) -> list[User]:
        return [self._users[name] for name in sorted(self._users)]

    @_deferred
    def setUserPassword(
        self,
        name: str,
        passwordHash: str,
        actor: str,
        mustChangePassword: bool = False,
    ) -> User:
        common.validateHash("password hash", passwordHash)
        common.validateActor(actor)
        user = self._existingUser(name)
        user = replace(
            user,
            passwordHash=passwordHash,
            mustChangePassword=bool(mustChangePassword),
            changed=self._clock(),
            credentialsVersion=user.credentialsVersion + 1,
        )
        self._users[name] = user
        self._change(
            actor,
            "user.password",
            common.objectName("user", name),
            common.auditDetail(mustChangePassword=bool(mustChangePassword)),
        )
        return user

    @_deferred
    def setUserEnabled(self, name: str, enabled: bool, actor: str) -> User:
        common.validateActor(actor)
        user = self._existingUser(name)
        enabled = bool(enabled)
        user = replace(
            user,
            enabled=enabled,
            changed=self._clock(),
            credentialsVersion=user.credentialsVersion + (0 if enabled else 1),
        )
        self._users[name] = user
        action = "user.enable" if enabled else "user.disable"
        self._change(actor, action, common.objectName("user", name), common.auditDetail())
        return user

    @_deferred
    def setUserRole(self, name: str, role: str, actor: str) -> User:
        common.validateRole(role)
        common.validateActor(actor)
        user = self._existingUser(name)
        previous = user.role
        user = replace(user, role=role, changed=self._clock())  # type: ignore[arg-type]
        self._users[name] = user
        self._change(
            actor,
            "user.role",
            common.objectName("user", name),
            common.auditDetail(role=role, previous=previous),
        )
        return user

    @_deferred
    def removeUser(self, name: str, actor: str) -> None:
        common.validateActor(actor)
        self._existingUser(name)
        groups = sorted(g for g, members in self._groups["user"].items() if name in members)
        rules = sorted(
            r.ruleId
            for r in self._rules.values()
            if r.subjectKind == "user" and r.subject == name
        )
        tokens = sorted(t.tokenId for t in self._tokens.values() if t.user == name)
        for group in groups:
            self._groups["user"][group].discard(name)
        for ruleId in rules:
            del self._rules[ruleId]
        for tokenId in tokens:
            del self._tokens[tokenId]
        del self._users[name]
        self._change(
            actor,
            "user.remove",
            common.objectName("user", name),
            common.auditDetail(groups=groups, rules=rules, tokens=len(tokens)),
        )

    # Devices

    def _existingDevice(self, deviceId: str) -> Device:
        validateName("device", deviceId)
        device = self._devices.get(deviceId)
        if device is None:
            raise NotFound("device", deviceId)
        return device

    @_deferred
    def addDevice(
        self,
        deviceId: str,
        displayName: str,
        secretHash: str,
        actor: str,
        allowPlaintext: bool = False,
    ) -> Device:
        validateName("device", deviceId)
        common.validateDisplayName(displayName)
        common.validateHash("secret hash", secretHash)
        common.validateActor(actor)
        if deviceId in self._devices:
            raise AlreadyExists("device", deviceId)
        now = self._clock()
        device = Device(
            deviceId=deviceId,
            displayName=displayName,
            secretHash=secretHash,
            allowPlaintext=bool(allowPlaintext),
            created=now,
            changed=now,
        )
        self._devices[deviceId] = device
        self._change(
            actor,
            "device.add",
            common.objectName("device", deviceId),
            common.auditDetail(displayName=displayName, allowPlaintext=bool(allowPlaintext)),
        )
        return device

    @_deferred
    def getDevice(self, deviceId: str) -> Device | None:
        return self._devices.get(deviceId)

    @_deferred
    def listDevices(self) -> list[Device]:
        return [self._devices[name] for name in sorted(self._devices)]

    @_deferred
    def updateDevice(
        self,
        deviceId: str,
        actor: str,
        displayName: str | None = None,
        allowPlaintext: bool | None = None,
    ) -> Device:
        common.validateActor(actor)
        if displayName is not None:
            common.validateDisplayName(displayName)
        device = self._existingDevice(deviceId)
        changes: dict[str, Any] = {}
        if displayName is not None:
            changes["displayName"] = displayName
        if allowPlaintext is not None:
            changes["allowPlaintext"] = bool(allowPlaintext)
        if not changes:
            return device
        device = replace(device, changed=self._clock(), **changes)
        self._devices[deviceId] = device
        self._change(
            actor,
            "device.update",
            common.objectName("device", deviceId),
            common.auditDetail(**changes),
        )
        return device

    @_deferred
    def setDeviceSecret(self, deviceId: str, secretHash: str, actor: str) -> Device:
        common.validateHash("secret hash", secretHash)
        common.validateActor(actor)
        device = self._existingDevice(deviceId)
        device = replace(
            device,
            secretHash=secretHash,
            changed=self._clock(),
            credentialsVersion=device.credentialsVersion + 1,
        )
        self._devices[deviceId] = device
        self._change(
            actor, "device.secret", common.objectName("device", deviceId), common.auditDetail()
        )
        return device

    @_deferred
    def setDeviceEnabled(self, deviceId: str, enabled: bool, actor: str) -> Device:
        common.validateActor(actor)
        device = self._existingDevice(deviceId)
        enabled = bool(enabled)
        device = replace(
            device,
            enabled=enabled,
            changed=self._clock(),
            credentialsVersion=device.credentialsVersion + (0 if enabled else 1),
        )
        self._devices[deviceId] = device
        action = "device.enable" if enabled else "device.disable"
        self._change(actor, action, common.objectName("device", deviceId), common.auditDetail())
        return device

    @_deferred
    def removeDevice(self, deviceId: str, actor: str) -> None:
        common.validateActor(actor)
        self._existingDevice(deviceId)
        groups = sorted(
            g for g, members in self._groups["device"].items() if deviceId in members
        )
        rules = sorted(
            r.ruleId
            for r in self._rules.values()
            if r.targetKind == "device" and r.target == deviceId
        )
        for group in groups:
            self._groups["device"][group].discard(deviceId)
        for ruleId in rules:
            del self._rules[ruleId]
        del self._devices[deviceId]
        self._change(
            actor,
            "device.remove",
            common.objectName("device", deviceId),
            common.auditDetail(groups=groups, rules=rules),
        )

    # Groups

    def _group(self, kind: str, name: str) -> Group:
        return Group(kind=kind, name=name, members=tuple(sorted(self._groups[kind][name])))  # type: ignore[arg-type]

    def _existingGroup(self, kind: str, name: str) -> set[str]:
        common.validateGroupKind(kind)
        objectKind = common.groupObjectKind(kind)
        validateName(common.KIND_LABELS[objectKind], name)
        members = self._groups[kind].get(name)
        if members is None:
            raise NotFound(common.KIND_LABELS[objectKind], name)
        return members

    @_deferred
    def addGroup(self, kind: str, name: str, actor: str) -> Group:
        common.validateGroupKind(kind)
        objectKind = common.groupObjectKind(kind)
        validateName(common.KIND_LABELS[objectKind], name)
        common.validateActor(actor)
        if name in self._groups[kind]:
            raise AlreadyExists(common.KIND_LABELS[objectKind], name)
        self._groups[kind][name] = set()
        self._change(actor, "group.add", common.objectName(objectKind, name), common.auditDetail())
        return self._group(kind, name)

    @_deferred
    def removeGroup(self, kind: str, name: str, actor: str) -> None:
        common.validateActor(actor)
        members = self._existingGroup(kind, name)
        objectKind = common.groupObjectKind(kind)
        rules = sorted(
            r.ruleId
            for r in self._rules.values()
            if (r.subjectKind == objectKind and r.subject == name)
            or (r.targetKind == objectKind and r.target == name)
        )
        for ruleId in rules:
            del self._rules[ruleId]
        del self._groups[kind][name]
        self._change(
            actor,
            "group.remove",
            common.objectName(objectKind, name),
            common.auditDetail(members=sorted(members), rules=rules),
        )

    @_deferred
    def listGroups(self, kind: str) -> list[Group]:
        common.validateGroupKind(kind)
        return [self._group(kind, name) for name in sorted(self._groups[kind])]

    def _checkMember(self, kind: str, member: str) -> None:
        validateName(kind, member)
        known = self._users if kind == "user" else self._devices
        if member not in known:
            raise NotFound(kind, member)

    @_deferred
    def addGroupMember(self, kind: str, group: str, member: str, actor: str) -> Group:
        common.validateActor(actor)
        members = self._existingGroup(kind, group)
        self._checkMember(kind, member)
        objectKind = common.groupObjectKind(kind)
        if member in members:
            raise AlreadyExists(
                kind, member, container=f"{common.KIND_LABELS[objectKind]} {group!r}"
            )
        members.add(member)
        self._change(
            actor,
            "group.member_add",
            common.objectName(objectKind, group),
            common.auditDetail(member=common.objectName(kind, member)),
        )
        return self._group(kind, group)

    @_deferred
    def removeGroupMember(self, kind: str, group: str, member: str, actor: str) -> Group:
        common.validateActor(actor)
        members = self._existingGroup(kind, group)
        validateName(kind, member)
        objectKind = common.groupObjectKind(kind)
        if member not in members:
            raise NotFound(kind, member, container=f"{common.KIND_LABELS[objectKind]} {group!r}")
        members.discard(member)
        self._change(
            actor,
            "group.member_remove",
            common.objectName(objectKind, group),
            common.auditDetail(member=common.objectName(kind, member)),
        )
        return self._group(kind, group)

    # Rules

    def _checkRuleEnd(self, kind: str, name: str) -> None:
        if kind == "user":
            found = name in self._users
        elif kind == "device":
            found = name in self._devices
        else:
            found = name in self._groups[kind.removesuffix("_group")]
        if not found:
            raise NotFound(common.KIND_LABELS[kind], name)

    @_deferred
    def addRule(
        self,
        subjectKind: str,
        subject: str,
        targetKind: str,
        target: str,
        rights: object,
        actor: str,
        schedule: Schedule | None = None,
    ) -> Rule:
        common.validateSubject(subjectKind, subject)
        common.validateTarget(targetKind, target)
        rightSet = validateRights(rights)
        common.validateSchedule(schedule)
        common.validateActor(actor)
        self._checkRuleEnd(subjectKind, subject)
        self._checkRuleEnd(targetKind, target)
        for existing in self._rules.values():
            if (
                existing.subjectKind == subjectKind
                and existing.subject == subject
                and existing.targetKind == targetKind
                and existing.target == target
                and existing.schedule == schedule
            ):
                raise AlreadyExists("rule", str(existing.ruleId), common.DUPLICATE_RULE_FIX)
        rule = Rule(
            ruleId=self._nextRuleId,
            subjectKind=subjectKind,  # type: ignore[arg-type]
            subject=subject,
            targetKind=targetKind,  # type: ignore[arg-type]
            target=target,
            rights=rightSet,
            schedule=schedule,
            created=self._clock(),
        )
        self._nextRuleId += 1
        self._rules[rule.ruleId] = rule
        self._change(
            actor,
            "rule.add",
            common.objectName("rule", rule.ruleId),
            common.ruleDetail(subjectKind, subject, targetKind, target, rightSet, schedule),
        )
        return rule

    def _existingRule(self, ruleId: int) -> Rule:
        rule = self._rules.get(common.validateRuleId(ruleId))
        if rule is None:
            raise NotFound("rule", str(ruleId))
        return rule

    @_deferred
    def setRuleRights(self, ruleId: int, rights: object, actor: str) -> Rule:
        rightSet = validateRights(rights)
        common.validateActor(actor)
        rule = self._existingRule(ruleId)
        previous = rule.rights
        rule = replace(rule, rights=rightSet)
        self._rules[rule.ruleId] = rule
        self._change(
            actor,
            "rule.update",
            common.objectName("rule", rule.ruleId),
            common.auditDetail(rights=sorted(rightSet), previous=sorted(previous)),
        )
        return rule

    @_deferred
    def removeRule(self, ruleId: int, actor: str) -> None:
        common.validateActor(actor)
        rule = self._existingRule(ruleId)
        del self._rules[rule.ruleId]
        self._change(
            actor,
            "rule.remove",
            common.objectName("rule", rule.ruleId),
            common.ruleDetail(
                rule.subjectKind, rule.subject, rule.targetKind, rule.target,
                rule.rights, rule.schedule,
            ),
        )

    @_deferred
    def listRules(self) -> list[Rule]:
        return [self._rules[ruleId] for ruleId in sorted(self._rules)]

    # Settings

    @_deferred
    def getSetting(self, key: str) -> str | None:
        return self._settings.get(key)

    @_deferred
    def setSetting(self, key: str, value: str, actor: str) -> None:
        common.validateSettingKey(key)
        if not isinstance(value, str):
            raise InvalidValue("setting value", repr(value), "give text")
        common.validateActor(actor)
        self._settings[key] = value
        self._change(actor, "setting.set", common.objectName("setting", key), common.auditDetail())

    # API tokens

    @_deferred
    def addApiToken(self, user: str, label: str, tokenHash: str, actor: str) -> ApiToken:
        common.validateLabel(label)
        common.validateHash("token hash", tokenHash)
        common.validateActor(actor)
        self._existingUser(user)
        if any(t.tokenHash == tokenHash for t in self._tokens.values()):
            raise AlreadyExists("API token", label, common.DUPLICATE_TOKEN_FIX)
        token = ApiToken(
            tokenId=self._nextTokenId,
            user=user,
            label=label,
            tokenHash=tokenHash,
            created=self._clock(),
        )
        self._nextTokenId += 1
        self._tokens[token.tokenId] = token
        self._change(
            actor,
            "token.add",
            common.objectName("token", token.tokenId),
            common.auditDetail(user=user, label=label),
        )
        return token

    @_deferred
    def listApiTokens(self, user: str) -> list[ApiToken]:
        self._existingUser(user)
        return [t for _, t in sorted(self._tokens.items()) if t.user == user]

    @_deferred
    def findApiToken(self, tokenHash: str) -> ApiToken | None:
        for token in self._tokens.values():
            if token.tokenHash == tokenHash:
                token = replace(token, lastUsed=self._clock())
                self._tokens[token.tokenId] = token
                return token
        return None

    @_deferred
    def removeApiToken(self, tokenId: int, actor: str) -> None:
        common.validateActor(actor)
        token = self._tokens.get(common.validateTokenId(tokenId))
        if token is None:
            raise NotFound("API token", str(tokenId))
        del self._tokens[token.tokenId]
        self._change(
            actor,
            "token.remove",
            common.objectName("token", token.tokenId),
            common.auditDetail(user=token.user, label=token.label),
        )

    # Audit log

    @_deferred
    def audit(self, actor: str, action: str, object: str, detail: str = "") -> AuditEntry:
        common.validateAuditEntry(actor, action, object, detail)
        return self._appendAudit(actor, action, object, detail)

    @_deferred
    def listAudit(
        self,
        actor: str | None = None,
        action: str | None = None,
        object: str | None = None,
        since: float | None = None,
        limit: int = 200,
    ) -> list[AuditEntry]:
        common.validateLimit(limit)
        result = []
        for entry in reversed(self._auditLog):
            if actor is not None and entry.actor != actor:
                continue
            if action is not None and not entry.action.startswith(action):
                continue
            if object is not None and object not in entry.object:
                continue
            if since is not None and entry.time < since:
                continue
            result.append(entry)
            if len(result) == limit:
                break
        return result
