"""
The JSON API under C{/api/v1}: the operations of the admin pages for
scripts, authorized by an administrator's API token
(C{Authorization: Bearer TOKEN}).

L{mrs.admin.openapi} describes every route here; a test runs schemathesis
against a live listener to keep the two in step.
"""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.web.iweb import IRequest

from mrs.admin.accounts import GROUP_TITLES, newApiToken
from mrs.admin.base import (
    Conflict,
    PageNotFound,
    RequestError,
    RouteGroup,
    apiRoute,
    installErrorHandler,
    jsonBody,
    jsonBool,
    jsonResponse,
    jsonString,
    queryValue,
)
from mrs.admin.openapi import openApiDocument
from mrs.admin.rules import explainRights
from mrs.admin.sessions import digest
from mrs.admin.status import currentPair, serverStatus
from mrs.admin.system import STORED_PREFIX, displayValue, effectiveSettings
from mrs.config import SCHEMA
from mrs.passwords import passwordProblem
from mrs.store.errors import InvalidValue
from mrs.store.models import (
    ROLES,
    ApiToken,
    AuditEntry,
    Device,
    Group,
    Rule,
    Schedule,
    User,
)
from mrs.tls import KEY_TYPES, GenerateError, SubjectFields


def deviceJson(device: Device) -> dict[str, Any]:
    return {
        "deviceId": device.deviceId,
        "displayName": device.displayName,
        "enabled": device.enabled,
        "allowPlaintext": device.allowPlaintext,
        "created": device.created,
        "changed": device.changed,
    }


def userJson(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "enabled": user.enabled,
        "mustChangePassword": user.mustChangePassword,
        "created": user.created,
        "changed": user.changed,
    }


def groupJson(group: Group) -> dict[str, Any]:
    return {"kind": group.kind, "name": group.name, "members": list(group.members)}


def scheduleJson(schedule: Schedule | None) -> dict[str, Any] | None:
    if schedule is None:
        return None
    return {"days": sorted(schedule.days), "start": schedule.start, "end": schedule.end}


def ruleJson(rule: Rule) -> dict[str, Any]:
    return {
        "ruleId": rule.ruleId,
        "subjectKind": rule.subjectKind,
        "subject": rule.subject,
        "targetKind": rule.targetKind,
        "target": rule.target,
        "rights": sorted(rule.rights),
        "schedule": scheduleJson(rule.schedule),
        "created": rule.created,
    }


def tokenJson(token: ApiToken) -> dict[str, Any]:
    return {
        "tokenId": token.tokenId,
        "user": token.user,
        "label": token.label,
        "created": token.created,
        "lastUsed": token.lastUsed,
    }


def auditJson(entry: AuditEntry) -> dict[str, Any]:
    return {
        "entryId": entry.entryId,
        "time": entry.time,
        "actor": entry.actor,
        "action": entry.action,
        "object": entry.object,
        "detail": entry.detail,
    }


def certificateJson(info: Any) -> dict[str, Any]:
    return {
        "subject": str(info.subject),
        "issuer": str(info.issuer),
        "sans": [str(n) for n in info.sans],
        "notBefore": info.notBefore.isoformat(),
        "notAfter": info.notAfter.isoformat(),
        "sha256": str(info.sha256),
        "keyDescription": str(getattr(info, "keyDescription", "")),
        "selfSigned": bool(getattr(info, "selfSigned", False)),
    }


def reportJson(report: Any, installed: bool) -> dict[str, Any]:
    info = getattr(report, "info", None)
    return {
        "installed": installed,
        "problems": [
            {"field": p.field, "severity": p.severity, "message": p.message}
            for p in report.problems
        ],
        "certificate": certificateJson(info) if info is not None else None,
    }


def parseScheduleJson(value: object) -> Schedule | None:
    """
    Read a rule's schedule from JSON.

    @raise RequestError: for a value of the wrong shape.
    @raise InvalidValue: for days or minutes out of range.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RequestError("The field 'schedule' must be an object or null.")
    days = value.get("days", list(range(7)))
    start = value.get("start", 0)
    end = value.get("end", 24 * 60)
    if not isinstance(days, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in days
    ):
        raise RequestError("The field 'schedule.days' must be a list of weekday numbers 0-6.")
    for name, minutes in (("start", start), ("end", end)):
        if not isinstance(minutes, int) or isinstance(minutes, bool):
            raise RequestError(f"The field 'schedule.{name}' must be minutes after midnight.")
    return Schedule(days=frozenset(days), start=start, end=end)


def bearerDigest(request: IRequest) -> str:
    """
    Return the SHA-256 digest of the request's bearer token.
    """
    header = (request.getHeader(b"authorization") or b"").decode("latin-1")
    return digest(header.partition(" ")[2].strip())


def refuseSelf(actor: str, name: str, what: str) -> None:
    """
    Keep an administrator from locking themselves out.

    @raise Conflict: when C{name} is the caller's own account.
    """
    if actor == name:
        raise Conflict(f"You cannot {what} your own account; use another administrator.")


class ApiV1(RouteGroup):
    """
    Mounted at C{/api/v1}.
    """

    app = Klein()

    @app.route("/openapi.json", methods=["GET"])
    def openapi(self, request: IRequest) -> bytes:
        return jsonResponse(request, 200, openApiDocument())

    @app.route("/status", methods=["GET"])
    @apiRoute
    async def status(self, request: IRequest, actor: str) -> Any:
        return serverStatus(self.admin)

    # Devices

    async def _device(self, deviceId: str) -> Device:
        device: Device | None = await self.admin.store.getDevice(deviceId)
        if device is None:
            raise PageNotFound(f"There is no device {deviceId!r}.")
        return device

    @app.route("/devices", methods=["GET"])
    @apiRoute
    async def listDevices(self, request: IRequest, actor: str) -> Any:
        query = queryValue(request, "q").lower()
        return [
            deviceJson(d) for d in await self.admin.store.listDevices()
            if query in d.deviceId.lower() or query in d.displayName.lower()
        ]

    @app.route("/devices", methods=["POST"])
    @apiRoute
    async def addDevice(self, request: IRequest, actor: str) -> Any:
        body = jsonBody(request)
        deviceId = jsonString(body, "deviceId")
        assert deviceId is not None
        displayName = jsonString(body, "displayName", required=False) or deviceId
        allowPlaintext = jsonBool(body, "allowPlaintext") or False
        secret = self.admin.passwords.generate()
        device = await self.admin.store.addDevice(
            deviceId, displayName, await self.admin.passwords.hash(secret), actor,
            allowPlaintext=allowPlaintext,
        )
        await self.admin.changed()
        return 201, {"device": deviceJson(device), "secret": secret}

    @app.route("/devices/<deviceId>", methods=["GET"])
    @apiRoute
    async def getDevice(self, request: IRequest, actor: str, deviceId: str) -> Any:
        return deviceJson(await self._device(deviceId))

    @app.route("/devices/<deviceId>", methods=["PATCH"])
    @apiRoute
    async def updateDevice(self, request: IRequest, actor: str, deviceId: str) -> Any:
        body = jsonBody(request)
        displayName = jsonString(body, "displayName", required=False)
        allowPlaintext = jsonBool(body, "allowPlaintext")
        enabled = jsonBool(body, "enabled")
        if displayName is not None and not displayName.strip():
            raise RequestError("The field 'displayName' must not be empty.")
        await self._device(deviceId)
        if displayName is not None or allowPlaintext is not None:
            await self.admin.store.updateDevice(deviceId, actor, displayName=displayName,
                                                allowPlaintext=allowPlaintext)
        if enabled is not None:
            await self.admin.store.setDeviceEnabled(deviceId, enabled, actor)
        await self.admin.changed()
        return deviceJson(await self._device(deviceId))

    @app.route("/devices/<deviceId>", methods=["DELETE"])
    @apiRoute
    async def removeDevice(self, request: IRequest, actor: str, deviceId: str) -> Any:
        await self._device(deviceId)
        await self.admin.store.removeDevice(deviceId, actor)
        await self.admin.changed()
        return 204, None

    @app.route("/devices/<deviceId>/secret", methods=["POST"])
    @apiRoute
    async def resetSecret(self, request: IRequest, actor: str, deviceId: str) -> Any:
        await self._device(deviceId)
        secret = self.admin.passwords.generate()
        await self.admin.store.setDeviceSecret(
            deviceId, await self.admin.passwords.hash(secret), actor)
        await self.admin.changed()
        return {"secret": secret}

    # Users

    async def _user(self, name: str) -> User:
        user: User | None = await self.admin.store.getUser(name)
        if user is None:
            raise PageNotFound(f"There is no user {name!r}.")
        return user

    @app.route("/users", methods=["GET"])
    @apiRoute
    async def listUsers(self, request: IRequest, actor: str) -> Any:
        query = queryValue(request, "q").lower()
        return [userJson(u) for u in await self.admin.store.listUsers()
                if query in u.name.lower()]

    @app.route("/users", methods=["POST"])
    @apiRoute
    async def addUser(self, request: IRequest, actor: str) -> Any:
        body = jsonBody(request)
        name = jsonString(body, "name")
        role = jsonString(body, "role", required=False) or "operator"
        if role not in ROLES:
            raise RequestError(f"The field 'role' must be one of: {', '.join(ROLES)}.")
        chosen = jsonString(body, "password", required=False)
        if chosen is not None:
            problem = passwordProblem(chosen)
            if problem is not None:
                raise RequestError(f"The field 'password' is invalid: {problem}.")
        password = chosen if chosen is not None else self.admin.passwords.generate()
        user = await self.admin.store.addUser(
            name, role, await self.admin.passwords.hash(password), actor,
            mustChangePassword=chosen is None,
        )
        await self.admin.changed()
        if chosen is not None:
            return 201, {"user": userJson(user)}
        return 201, {"user": userJson(user), "password": password}

    @app.route("/users/<name>", methods=["GET"])
    @apiRoute
    async def getUser(self, request: IRequest, actor: str, name: str) -> Any:
        return userJson(await self._user(name))

    @app.route("/users/<name>", methods=["PATCH"])
    @apiRoute
    async def updateUser(self, request: IRequest, actor: str, name: str) -> Any:
        body = jsonBody(request)
        role = jsonString(body, "role", required=False)
        enabled = jsonBool(body, "enabled")
        if role is not None and role not in ROLES:
            raise RequestError(f"The field 'role' must be one of: {', '.join(ROLES)}.")
        user = await self._user(name)
        if role is not None and role != user.role:
            refuseSelf(actor, name, "change the role of")
            await self.admin.store.setUserRole(name, role, actor)
        if enabled is not None and enabled != user.enabled:
            refuseSelf(actor, name, "disable")
            await self.admin.store.setUserEnabled(name, enabled, actor)
            if not enabled:
                self.admin.sessions.endAllFor(name)
        await self.admin.changed()
        return userJson(await self._user(name))

    @app.route("/users/<name>", methods=["DELETE"])
    @apiRoute
    async def removeUser(self, request: IRequest, actor: str, name: str) -> Any:
        await self._user(name)
        refuseSelf(actor, name, "remove")
        await self.admin.store.removeUser(name, actor)
        self.admin.sessions.endAllFor(name)
        await self.admin.changed()
        return 204, None

    @app.route("/users/<name>/password", methods=["POST"])
    @apiRoute
    async def resetPassword(self, request: IRequest, actor: str, name: str) -> Any:
        await self._user(name)
        refuseSelf(actor, name, "reset the password of")
        password = self.admin.passwords.generate()
        await self.admin.store.setUserPassword(
            name, await self.admin.passwords.hash(password), actor, mustChangePassword=True)
        self.admin.sessions.endAllFor(name)
        await self.admin.changed()
        return {"password": password}

    @app.route("/users/<name>/logout", methods=["POST"])
    @apiRoute
    async def logoutUser(self, request: IRequest, actor: str, name: str) -> Any:
        await self._user(name)
        ended = self.admin.hub.disconnectUser(name, "logged out by an administrator")
        self.admin.sessions.endAllFor(name)
        await self.admin.store.audit(actor, "user.logout", f"user:{name}",
                                     f'{{"client_sessions": {ended}}}')
        return {"sessions": ended}

    @app.route("/users/<name>/tokens", methods=["GET"])
    @apiRoute
    async def listTokens(self, request: IRequest, actor: str, name: str) -> Any:
        await self._user(name)
        return [tokenJson(t) for t in await self.admin.store.listApiTokens(name)]

    @app.route("/users/<name>/tokens", methods=["POST"])
    @apiRoute
    async def createToken(self, request: IRequest, actor: str, name: str) -> Any:
        body = jsonBody(request)
        label = jsonString(body, "label")
        assert label is not None
        if not label.strip() or len(label) > 100:
            raise RequestError("The field 'label' must have 1 to 100 characters.")
        user = await self._user(name)
        if user.role != "admin":
            raise Conflict("Only administrators can have API tokens; operators cannot.")
        token = newApiToken()
        record = await self.admin.store.addApiToken(name, label, digest(token), actor)
        return 201, {"token": token, "apiToken": tokenJson(record)}

    @app.route("/users/<name>/tokens/<int:tokenId>", methods=["DELETE"])
    @apiRoute
    async def revokeToken(self, request: IRequest, actor: str, name: str,
                          tokenId: int) -> Any:
        await self._user(name)
        tokens = await self.admin.store.listApiTokens(name)
        [token] = [t for t in tokens if t.tokenId == tokenId] or [None]
        if token is None:
            raise PageNotFound(f"User {name!r} has no API token {tokenId}.")
        if token.tokenHash == bearerDigest(request):
            raise Conflict("This request is authorized by that token; revoke it with "
                           "another token or on your user page.")
        await self.admin.store.removeApiToken(tokenId, actor)
        return 204, None

    # Groups

    def _kind(self, kind: str) -> str:
        if kind not in GROUP_TITLES:
            raise PageNotFound("Group kinds are 'user' and 'device'.")
        return kind

    async def _group(self, kind: str, name: str) -> Group:
        for group in await self.admin.store.listGroups(kind):
            if group.name == name:
                return group  # type: ignore[no-any-return]
        raise PageNotFound(f"There is no {kind} group {name!r}.")

    @app.route("/groups/<kind>", methods=["GET"])
    @apiRoute
    async def listGroups(self, request: IRequest, actor: str, kind: str) -> Any:
        return [groupJson(g) for g in await self.admin.store.listGroups(self._kind(kind))]

    @app.route("/groups/<kind>", methods=["POST"])
    @apiRoute
    async def addGroup(self, request: IRequest, actor: str, kind: str) -> Any:
        kind = self._kind(kind)
        name = jsonString(jsonBody(request), "name")
        group = await self.admin.store.addGroup(kind, name, actor)
        await self.admin.changed()
        return 201, groupJson(group)

    @app.route("/groups/<kind>/<name>", methods=["GET"])
    @apiRoute
    async def getGroup(self, request: IRequest, actor: str, kind: str, name: str) -> Any:
        return groupJson(await self._group(self._kind(kind), name))

    @app.route("/groups/<kind>/<name>", methods=["DELETE"])
    @apiRoute
    async def removeGroup(self, request: IRequest, actor: str, kind: str, name: str) -> Any:
        kind = self._kind(kind)
        await self._group(kind, name)
        await self.admin.store.removeGroup(kind, name, actor)
        await self.admin.changed()
        return 204, None

    @app.route("/groups/<kind>/<name>/members/<member>", methods=["PUT"])
    @apiRoute
    async def addMember(self, request: IRequest, actor: str, kind: str, name: str,
                        member: str) -> Any:
        kind = self._kind(kind)
        await self._group(kind, name)
        group = await self.admin.store.addGroupMember(kind, name, member, actor)
        await self.admin.changed()
        return groupJson(group)

    @app.route("/groups/<kind>/<name>/members/<member>", methods=["DELETE"])
    @apiRoute
    async def removeMember(self, request: IRequest, actor: str, kind: str, name: str,
                           member: str) -> Any:
        kind = self._kind(kind)
        group = await self._group(kind, name)
        if member not in group.members:
            raise PageNotFound(f"{member!r} is not a member of {kind} group {name!r}.")
        group = await self.admin.store.removeGroupMember(kind, name, member, actor)
        await self.admin.changed()
        return groupJson(group)

    # Rules

    @app.route("/rules", methods=["GET"])
    @apiRoute
    async def listRules(self, request: IRequest, actor: str) -> Any:
        return [ruleJson(r) for r in await self.admin.store.listRules()]

    @app.route("/rules", methods=["POST"])
    @apiRoute
    async def addRule(self, request: IRequest, actor: str) -> Any:
        body = jsonBody(request)
        subjectKind = jsonString(body, "subjectKind")
        subject = jsonString(body, "subject")
        targetKind = jsonString(body, "targetKind")
        target = jsonString(body, "target")
        rights = body.get("rights")
        if not isinstance(rights, list) or not all(isinstance(r, str) for r in rights):
            raise RequestError("The field 'rights' must be a list of right names.")
        schedule = parseScheduleJson(body.get("schedule"))
        rule = await self.admin.store.addRule(subjectKind, subject, targetKind, target,
                                              rights, actor, schedule=schedule)
        await self.admin.changed()
        return 201, ruleJson(rule)

    @app.route("/rules/<int:ruleId>", methods=["PATCH"])
    @apiRoute
    async def updateRule(self, request: IRequest, actor: str, ruleId: int) -> Any:
        body = jsonBody(request)
        rights = body.get("rights")
        if not isinstance(rights, list) or not all(isinstance(r, str) for r in rights):
            raise RequestError("The field 'rights' must be a list of right names.")
        rule = await self.admin.store.setRuleRights(ruleId, rights, actor)
        await self.admin.changed()
        return ruleJson(rule)

    @app.route("/rules/<int:ruleId>", methods=["DELETE"])
    @apiRoute
    async def removeRule(self, request: IRequest, actor: str, ruleId: int) -> Any:
        await self.admin.store.removeRule(ruleId, actor)
        await self.admin.changed()
        return 204, None

    @app.route("/explain", methods=["GET"])
    @apiRoute
    async def explain(self, request: IRequest, actor: str) -> Any:
        user = queryValue(request, "user")
        device = queryValue(request, "device")
        if not user or not device:
            raise RequestError("Give both 'user' and 'device' query parameters.")
        if await self.admin.store.getUser(user) is None:
            raise PageNotFound(f"There is no user {user!r}.")
        if await self.admin.store.getDevice(device) is None:
            raise PageNotFound(f"There is no device {device!r}.")
        return {
            "user": user,
            "device": device,
            "rights": [
                {"right": right, "ruleId": None if rule is None else rule.ruleId}
                for right, rule in explainRights(self.admin.permissions, user, device)
            ],
        }

    # Server authentication

    @app.route("/certificate", methods=["GET"])
    @apiRoute
    async def certificate(self, request: IRequest, actor: str) -> Any:
        current = currentPair(self.admin.tls)
        if current is None:
            raise PageNotFound("No certificate is loaded yet.")
        result = certificateJson(current.info)
        result["pem"] = bytes(current.certificatePem).decode("ascii")
        result["daysToExpiry"] = float(self.admin.tls.daysToExpiry())
        return result

    def _pair(self, body: dict[str, Any]) -> tuple[bytes, bytes, bytes, str | None]:
        key = jsonString(body, "key")
        certificate = jsonString(body, "certificate")
        assert key is not None and certificate is not None
        chain = jsonString(body, "chain", required=False) or ""
        passphrase = jsonString(body, "passphrase", required=False) or None
        return key.encode("utf-8"), certificate.encode("utf-8"), chain.encode("utf-8"), passphrase

    @app.route("/certificate/check", methods=["POST"])
    @apiRoute
    async def check(self, request: IRequest, actor: str) -> Any:
        key, certificate, chain, passphrase = self._pair(jsonBody(request))
        report = await self.admin.tls.check(key, certificate, chain, passphrase)
        return reportJson(report, installed=False)

    @app.route("/certificate", methods=["PUT"])
    @apiRoute
    async def install(self, request: IRequest, actor: str) -> Any:
        key, certificate, chain, passphrase = self._pair(jsonBody(request))
        try:
            report = await self.admin.tls.install(key, certificate, chain, passphrase,
                                                  actor=actor)
        except Exception as e:
            report = getattr(e, "report", None)
            if report is None:
                raise
            return 422, reportJson(report, installed=False)
        return reportJson(report, installed=True)

    @app.route("/certificate/generate", methods=["POST"])
    @apiRoute
    async def generate(self, request: IRequest, actor: str) -> Any:
        body = jsonBody(request)
        keyType = jsonString(body, "keyType", required=False) or self.admin.config.key_type
        selfSigned = jsonBool(body, "selfSigned")
        if keyType not in KEY_TYPES:
            raise RequestError(f"The field 'keyType' must be one of: {', '.join(KEY_TYPES)}.")
        if selfSigned is None:
            selfSigned = True
        commonName = jsonString(body, "commonName", required=False)
        organization = jsonString(body, "organization", required=False)
        subject = SubjectFields(commonName=commonName or None, organization=organization or None)
        try:
            result = await self.admin.tls.generate(keyType, selfSigned=selfSigned,
                                                   subject=subject, actor=actor)
        except GenerateError as e:
            raise RequestError(str(e))
        if selfSigned:
            return {"certificate": certificateJson(self.admin.tls.current.info), "csr": None}
        return {"certificate": None, "csr": bytes(result.requestPem).decode("ascii")}

    @app.route("/certificate/signed", methods=["PUT"])
    @apiRoute
    async def installSigned(self, request: IRequest, actor: str) -> Any:
        body = jsonBody(request)
        certificate = jsonString(body, "certificate")
        assert certificate is not None
        chain = jsonString(body, "chain", required=False) or ""
        if not await self.admin.tls.pendingRequest():
            raise Conflict("There is no pending certificate signing request; generate one.")
        try:
            # With an empty key, the TLS material uses the pending request's key.
            report = await self.admin.tls.install(
                b"", certificate.encode("utf-8"), chain.encode("utf-8"), actor=actor)
        except Exception as e:
            report = getattr(e, "report", None)
            if report is None:
                raise
            return 422, reportJson(report, installed=False)
        return reportJson(report, installed=True)

    # Settings and audit

    @app.route("/settings", methods=["GET"])
    @apiRoute
    async def settings(self, request: IRequest, actor: str) -> Any:
        values = await effectiveSettings(self.admin.store, self.admin.config)
        result = []
        for setting in SCHEMA:
            value = displayValue(values[setting.key])
            if setting.key == "metrics_token":
                value = "set" if value else ""
            result.append({
                "key": setting.key, "section": setting.section, "value": value,
                "restart": setting.restart, "help": setting.help,
            })
        return result

    @app.route("/settings/<key>", methods=["PUT"])
    @apiRoute
    async def changeSetting(self, request: IRequest, actor: str, key: str) -> Any:
        from mrs.admin.system import liveSetting

        setting = liveSetting(key)
        value = jsonString(jsonBody(request), "value")
        assert value is not None
        try:
            setting.parse(value)
        except ValueError as e:
            raise InvalidValue(key, value, str(e))
        await self.admin.store.setSetting(STORED_PREFIX + key, value.strip(), actor)
        await self.admin.changed()
        return {"key": key, "value": value.strip()}

    @app.route("/audit", methods=["GET"])
    @apiRoute
    async def audit(self, request: IRequest, actor: str) -> Any:
        limitText = queryValue(request, "limit") or "200"
        if not limitText.isdigit() or not 1 <= int(limitText) <= 1000:
            raise RequestError("The 'limit' parameter must be a whole number from 1 to 1000.")
        entries = await self.admin.store.listAudit(
            actor=queryValue(request, "actor") or None,
            action=queryValue(request, "action") or None,
            object=queryValue(request, "object") or None,
            limit=int(limitText),
        )
        return [auditJson(e) for e in entries]


installErrorHandler(ApiV1.app)
