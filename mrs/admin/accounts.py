"""
Pages for devices, users and their groups: list, search, create, edit,
enable or disable, remove, and reset a device secret or a user password
(the new one is shown once).  A user's page also creates and revokes the
user's API tokens.
"""

from __future__ import annotations

import secrets
from typing import Any

from klein import Klein
from twisted.web.iweb import IRequest

from mrs.admin import html
from mrs.admin.base import (
    Conflict,
    PageNotFound,
    RequestError,
    RouteGroup,
    adminPage,
    formValue,
    installErrorHandler,
    queryValue,
)
from mrs.admin.sessions import AdminSession, digest
from mrs.store.errors import StoreError
from mrs.store.models import ROLES, Device, Group, User

GROUP_TITLES = {"user": "User groups", "device": "Device groups"}


def _matches(query: str, *values: str) -> bool:
    query = query.strip().lower()
    return not query or any(query in value.lower() for value in values)


def _state(enabled: bool) -> html.Markup:
    return html.Markup('<span class="{cls}">{text}</span>').format(
        cls="ok" if enabled else "warn", text="enabled" if enabled else "disabled"
    )


def newApiToken() -> str:
    """
    Return a new random API token (shown once, stored as its SHA-256).
    """
    return "mrs_" + secrets.token_urlsafe(32)


def refuseSelf(session: AdminSession, name: str, what: str) -> None:
    """
    Keep an administrator from locking themselves out.

    @raise Conflict: when C{name} is the signed-in administrator.
    """
    if name == session.user:
        raise Conflict(
            f"You cannot {what} your own account; ask another administrator to do it."
        )


class DevicePages(RouteGroup):
    """
    Devices, mounted at C{/admin/devices}.
    """

    app = Klein()

    async def _render(
        self, request: IRequest, session: AdminSession, form: html.Form,
        message: html.Markup | None = None,
    ) -> bytes:
        query = queryValue(request, "q")
        devices: list[Device] = await self.admin.store.listDevices()
        rows = (
            [
                html.link(f"/admin/devices/{d.deviceId}", d.deviceId),
                d.displayName,
                _state(d.enabled),
                "allowed" if d.allowPlaintext else "",
            ]
            for d in devices
            if _matches(query, d.deviceId, d.displayName)
        )
        body = (message or html.Markup("")) + html.searchForm(
            "/admin/devices", query, "Search devices"
        ) + html.table(
            ("Device id", "Name", "State", "Plaintext"), rows,
            tableId="devices", empty="No devices match." if query else "No devices yet.",
        ) + html.Markup("<h2>Add a device</h2>") + html.postForm(
            "/admin/devices",
            session.csrfToken,
            html.field(form, "deviceId", "Device id", required=True, formId="add",
                       hint="Letters, digits, '.', '_', '@' or '-'; the device logs in with it.")
            + html.field(form, "displayName", "Display name", formId="add")
            + html.checkbox(form, "allowPlaintext",
                            "Allow an unencrypted link (legacy units only)", formId="add"),
            "Add device",
            formId="add-device",
        )
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page("Devices", body, user=session.user, csrfToken=session.csrfToken,
                         current="/admin/devices")

    @app.route("/", strict_slashes=False, methods=["GET"])
    @adminPage
    async def listDevices(self, request: IRequest, session: AdminSession) -> bytes:
        return await self._render(request, session, html.Form())

    @app.route("/", strict_slashes=False, methods=["POST"])
    @adminPage
    async def addDevice(self, request: IRequest, session: AdminSession) -> bytes:
        deviceId = formValue(request, "deviceId").strip()
        displayName = formValue(request, "displayName").strip() or deviceId
        allowPlaintext = formValue(request, "allowPlaintext") == "on"
        form = html.Form({"deviceId": deviceId, "displayName": displayName,
                          "allowPlaintext": "on" if allowPlaintext else ""})
        secret = self.admin.passwords.generate()
        try:
            secretHash = await self.admin.passwords.hash(secret)
            await self.admin.store.addDevice(deviceId, displayName, secretHash, session.user,
                                             allowPlaintext=allowPlaintext)
        except StoreError as e:
            form.errors["deviceId"] = str(e)
            request.setResponseCode(400)
            return await self._render(request, session, form)
        await self.admin.changed()
        return await self._render(
            request, session, html.Form(),
            html.secretOnce(f"Device {deviceId} was added. Its secret", secret),
        )

    async def _device(self, deviceId: str) -> Device:
        device: Device | None = await self.admin.store.getDevice(deviceId)
        if device is None:
            raise PageNotFound(f"There is no device {deviceId!r}; it may have been removed.")
        return device

    async def _renderDevice(
        self, request: IRequest, session: AdminSession, device: Device,
        form: html.Form | None = None, message: html.Markup | None = None,
    ) -> bytes:
        base = f"/admin/devices/{device.deviceId}"
        if form is None:
            form = html.Form({"displayName": device.displayName,
                              "allowPlaintext": "on" if device.allowPlaintext else ""})
        groups: list[Group] = await self.admin.store.listGroups("device")
        memberOf = [g.name for g in groups if device.deviceId in g.members]
        csrf = session.csrfToken
        body = (message or html.Markup("")) + html.Markup(
            '<dl class="facts"><dt>State</dt><dd>{state}</dd><dt>Groups</dt><dd>{groups}</dd>'
            "<dt>Created</dt><dd>{created}</dd></dl>"
        ).format(
            state=_state(device.enabled), groups=", ".join(memberOf) or "none",
            created=html.formatTime(device.created),
        ) + html.Markup("<h2>Edit</h2>") + html.postForm(
            base, csrf,
            html.field(form, "displayName", "Display name", formId="edit")
            + html.checkbox(form, "allowPlaintext",
                            "Allow an unencrypted link (legacy units only)", formId="edit"),
            "Save",
        ) + html.Markup('<h2>Actions</h2><div class="actions">') + html.postForm(
            f"{base}/enabled", csrf,
            html.Markup('<input type="hidden" name="enabled" value="{v}">').format(
                v="off" if device.enabled else "on"),
            "Disable" if device.enabled else "Enable", inline=True,
        ) + html.postForm(
            f"{base}/secret", csrf, html.Markup(""), "Reset secret", inline=True,
        ) + html.postForm(
            f"{base}/remove", csrf, html.Markup(""), "Remove device", inline=True, danger=True,
        ) + html.Markup("</div>")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page(f"Device {device.deviceId}", body, user=session.user,
                         csrfToken=csrf, current="/admin/devices")

    @app.route("/<deviceId>", methods=["GET"])
    @adminPage
    async def showDevice(self, request: IRequest, session: AdminSession, deviceId: str) -> bytes:
        return await self._renderDevice(request, session, await self._device(deviceId))

    @app.route("/<deviceId>", methods=["POST"])
    @adminPage
    async def editDevice(self, request: IRequest, session: AdminSession, deviceId: str) -> bytes:
        device = await self._device(deviceId)
        displayName = formValue(request, "displayName").strip()
        allowPlaintext = formValue(request, "allowPlaintext") == "on"
        form = html.Form({"displayName": displayName,
                          "allowPlaintext": "on" if allowPlaintext else ""})
        if not displayName:
            form.errors["displayName"] = "Give the device a display name."
            request.setResponseCode(400)
            return await self._renderDevice(request, session, device, form)
        await self.admin.store.updateDevice(deviceId, session.user, displayName=displayName,
                                            allowPlaintext=allowPlaintext)
        await self.admin.changed()
        return await self._renderDevice(request, session, await self._device(deviceId),
                                        message=html.notice("The device was saved.", "ok"))

    @app.route("/<deviceId>/enabled", methods=["POST"])
    @adminPage
    async def enableDevice(self, request: IRequest, session: AdminSession,
                           deviceId: str) -> bytes:
        await self._device(deviceId)
        enabled = formValue(request, "enabled") == "on"
        await self.admin.store.setDeviceEnabled(deviceId, enabled, session.user)
        await self.admin.changed()
        return await self._renderDevice(
            request, session, await self._device(deviceId),
            message=html.notice(f"The device was {'enabled' if enabled else 'disabled'}.", "ok"),
        )

    @app.route("/<deviceId>/secret", methods=["POST"])
    @adminPage
    async def resetSecret(self, request: IRequest, session: AdminSession,
                          deviceId: str) -> bytes:
        await self._device(deviceId)
        secret = self.admin.passwords.generate()
        await self.admin.store.setDeviceSecret(
            deviceId, await self.admin.passwords.hash(secret), session.user
        )
        await self.admin.changed()
        return await self._renderDevice(
            request, session, await self._device(deviceId),
            message=html.secretOnce("The device's new secret", secret),
        )

    @app.route("/<deviceId>/remove", methods=["POST"])
    @adminPage
    async def removeDevice(self, request: IRequest, session: AdminSession,
                           deviceId: str) -> bytes:
        await self._device(deviceId)
        await self.admin.store.removeDevice(deviceId, session.user)
        await self.admin.changed()
        return await self._render(
            request, session, html.Form(),
            html.notice(f"Device {deviceId} was removed.", "ok"),
        )


class UserPages(RouteGroup):
    """
    Users and their API tokens, mounted at C{/admin/users}.
    """

    app = Klein()

    async def _render(
        self, request: IRequest, session: AdminSession, form: html.Form,
        message: html.Markup | None = None,
    ) -> bytes:
        query = queryValue(request, "q")
        users: list[User] = await self.admin.store.listUsers()
        rows = (
            [html.link(f"/admin/users/{u.name}", u.name), u.role, _state(u.enabled)]
            for u in users
            if _matches(query, u.name, u.role)
        )
        if not form.values.get("role"):
            form.values["role"] = "operator"
        body = (message or html.Markup("")) + html.searchForm(
            "/admin/users", query, "Search users"
        ) + html.table(
            ("User", "Role", "State"), rows, tableId="users",
            empty="No users match." if query else "No users yet.",
        ) + html.Markup("<h2>Add a user</h2>") + html.postForm(
            "/admin/users",
            session.csrfToken,
            html.field(form, "name", "User name", required=True, formId="add")
            + html.select(form, "role", "Role",
                          [("operator", "operator (monitor only)"),
                           ("admin", "admin (this site and the API)")], formId="add"),
            "Add user",
            formId="add-user",
        )
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page("Users", body, user=session.user, csrfToken=session.csrfToken,
                         current="/admin/users")

    @app.route("/", strict_slashes=False, methods=["GET"])
    @adminPage
    async def listUsers(self, request: IRequest, session: AdminSession) -> bytes:
        return await self._render(request, session, html.Form())

    @app.route("/", strict_slashes=False, methods=["POST"])
    @adminPage
    async def addUser(self, request: IRequest, session: AdminSession) -> bytes:
        name = formValue(request, "name").strip()
        role = formValue(request, "role")
        form = html.Form({"name": name, "role": role})
        if role not in ROLES:
            form.errors["role"] = f"Choose one of: {', '.join(ROLES)}."
            request.setResponseCode(400)
            return await self._render(request, session, form)
        password = self.admin.passwords.generate()
        try:
            passwordHash = await self.admin.passwords.hash(password)
            await self.admin.store.addUser(name, role, passwordHash, session.user,
                                           mustChangePassword=True)
        except StoreError as e:
            form.errors["name"] = str(e)
            request.setResponseCode(400)
            return await self._render(request, session, form)
        await self.admin.changed()
        return await self._render(
            request, session, html.Form(),
            html.secretOnce(
                f"User {name} was added. The one-time password (to be changed at first "
                "sign-in)", password),
        )

    async def _user(self, name: str) -> User:
        user: User | None = await self.admin.store.getUser(name)
        if user is None:
            raise PageNotFound(f"There is no user {name!r}; it may have been removed.")
        return user

    async def _renderUser(
        self, request: IRequest, session: AdminSession, user: User,
        form: html.Form | None = None, message: html.Markup | None = None,
    ) -> bytes:
        base = f"/admin/users/{user.name}"
        csrf = session.csrfToken
        if form is None:
            form = html.Form({"role": user.role})
        groups: list[Group] = await self.admin.store.listGroups("user")
        memberOf = [g.name for g in groups if user.name in g.members]
        tokens = await self.admin.store.listApiTokens(user.name)
        tokenRows = (
            [
                t.label,
                html.formatTime(t.created),
                html.formatTime(t.lastUsed) or "never",
                html.postForm(f"{base}/tokens/{t.tokenId}/remove", csrf, html.Markup(""),
                              "Revoke", inline=True, danger=True),
            ]
            for t in tokens
        )
        body = (message or html.Markup("")) + html.Markup(
            '<dl class="facts"><dt>Role</dt><dd>{role}</dd><dt>State</dt><dd>{state}</dd>'
            "<dt>Groups</dt><dd>{groups}</dd><dt>Password</dt><dd>{pw}</dd></dl>"
        ).format(
            role=user.role, state=_state(user.enabled), groups=", ".join(memberOf) or "none",
            pw="one-time, must be changed at next sign-in" if user.mustChangePassword
            else "set by the user",
        ) + html.Markup("<h2>Role</h2>") + html.postForm(
            base, csrf,
            html.select(form, "role", "Role", [(r, r) for r in ROLES], formId="edit"),
            "Save",
        ) + html.Markup('<h2>Actions</h2><div class="actions">') + html.postForm(
            f"{base}/enabled", csrf,
            html.Markup('<input type="hidden" name="enabled" value="{v}">').format(
                v="off" if user.enabled else "on"),
            "Disable" if user.enabled else "Enable", inline=True,
        ) + html.postForm(
            f"{base}/password", csrf, html.Markup(""), "Reset password", inline=True,
        ) + html.postForm(
            f"{base}/remove", csrf, html.Markup(""), "Remove user", inline=True, danger=True,
        ) + html.Markup("</div><h2>API tokens</h2>") + html.table(
            ("Label", "Created", "Last used", ""), tokenRows, tableId="tokens",
            empty="No API tokens.",
        )
        if user.role == "admin":
            body += html.postForm(
                f"{base}/tokens", csrf,
                html.field(form, "label", "Label", formId="token", required=True,
                           hint="What the token is for, such as a script's name."),
                "Create API token",
            )
        else:
            body += html.Markup(
                '<p class="hint">Only administrators\' API tokens work; '
                "an operator cannot use the API.</p>"
            )
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page(f"User {user.name}", body, user=session.user,
                         csrfToken=csrf, current="/admin/users")

    @app.route("/<name>", methods=["GET"])
    @adminPage
    async def showUser(self, request: IRequest, session: AdminSession, name: str) -> bytes:
        return await self._renderUser(request, session, await self._user(name))

    @app.route("/<name>", methods=["POST"])
    @adminPage
    async def editUser(self, request: IRequest, session: AdminSession, name: str) -> bytes:
        user = await self._user(name)
        role = formValue(request, "role")
        if role not in ROLES:
            form = html.Form({"role": role}, {"role": f"Choose one of: {', '.join(ROLES)}."})
            request.setResponseCode(400)
            return await self._renderUser(request, session, user, form)
        if role != user.role:
            refuseSelf(session, name, "change the role of")
            await self.admin.store.setUserRole(name, role, session.user)
            await self.admin.changed()
        return await self._renderUser(request, session, await self._user(name),
                                      message=html.notice("The user was saved.", "ok"))

    @app.route("/<name>/enabled", methods=["POST"])
    @adminPage
    async def enableUser(self, request: IRequest, session: AdminSession, name: str) -> bytes:
        await self._user(name)
        enabled = formValue(request, "enabled") == "on"
        if not enabled:
            refuseSelf(session, name, "disable")
        await self.admin.store.setUserEnabled(name, enabled, session.user)
        await self.admin.changed()
        return await self._renderUser(
            request, session, await self._user(name),
            message=html.notice(f"The user was {'enabled' if enabled else 'disabled'}.", "ok"),
        )

    @app.route("/<name>/password", methods=["POST"])
    @adminPage
    async def resetPassword(self, request: IRequest, session: AdminSession, name: str) -> bytes:
        await self._user(name)
        refuseSelf(session, name, "reset the password of")
        password = self.admin.passwords.generate()
        await self.admin.store.setUserPassword(
            name, await self.admin.passwords.hash(password), session.user,
            mustChangePassword=True,
        )
        await self.admin.changed()
        return await self._renderUser(
            request, session, await self._user(name),
            message=html.secretOnce(
                "The new one-time password (to be changed at next sign-in)", password),
        )

    @app.route("/<name>/remove", methods=["POST"])
    @adminPage
    async def removeUser(self, request: IRequest, session: AdminSession, name: str) -> bytes:
        await self._user(name)
        refuseSelf(session, name, "remove")
        await self.admin.store.removeUser(name, session.user)
        self.admin.sessions.endAllFor(name)
        await self.admin.changed()
        return await self._render(request, session, html.Form(),
                                  html.notice(f"User {name} was removed.", "ok"))

    @app.route("/<name>/tokens", methods=["POST"])
    @adminPage
    async def createToken(self, request: IRequest, session: AdminSession, name: str) -> bytes:
        user = await self._user(name)
        label = formValue(request, "label").strip()
        if not label or len(label) > 100:
            form = html.Form({"label": label, "role": user.role},
                             {"label": "Give the token a label of 1 to 100 characters."})
            request.setResponseCode(400)
            return await self._renderUser(request, session, user, form)
        if user.role != "admin":
            raise RequestError("Only administrators can have API tokens.")
        token = newApiToken()
        await self.admin.store.addApiToken(name, label, digest(token), session.user)
        return await self._renderUser(
            request, session, user, message=html.secretOnce("The new API token", token)
        )

    @app.route("/<name>/tokens/<int:tokenId>/remove", methods=["POST"])
    @adminPage
    async def revokeToken(self, request: IRequest, session: AdminSession, name: str,
                          tokenId: int) -> bytes:
        user = await self._user(name)
        tokens = await self.admin.store.listApiTokens(name)
        if not any(t.tokenId == tokenId for t in tokens):
            raise PageNotFound(f"User {name} has no API token {tokenId}.")
        await self.admin.store.removeApiToken(tokenId, session.user)
        return await self._renderUser(request, session, user,
                                      message=html.notice("The API token was revoked.", "ok"))


class GroupPages(RouteGroup):
    """
    User groups and device groups, mounted at C{/admin/groups}.
    """

    app = Klein()

    def _kind(self, kind: str) -> str:
        if kind not in GROUP_TITLES:
            raise PageNotFound("Groups are either user groups or device groups.")
        return kind

    async def _render(
        self, request: IRequest, session: AdminSession, kind: str, form: html.Form,
        message: html.Markup | None = None,
    ) -> bytes:
        query = queryValue(request, "q")
        groups: list[Group] = await self.admin.store.listGroups(kind)
        rows = (
            [html.link(f"/admin/groups/{kind}/{g.name}", g.name), ", ".join(g.members)]
            for g in groups
            if _matches(query, g.name, *g.members)
        )
        body = (message or html.Markup("")) + html.searchForm(
            f"/admin/groups/{kind}", query, "Search groups"
        ) + html.table(("Group", "Members"), rows, tableId="groups",
                       empty="No groups match." if query else "No groups yet.") + html.Markup(
            "<h2>Add a group</h2>"
        ) + html.postForm(
            f"/admin/groups/{kind}", session.csrfToken,
            html.field(form, "name", "Group name", required=True, formId="add"),
            "Add group",
        )
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page(GROUP_TITLES[kind], body, user=session.user,
                         csrfToken=session.csrfToken, current=f"/admin/groups/{kind}")

    @app.route("/<kind>", methods=["GET"])
    @adminPage
    async def listGroups(self, request: IRequest, session: AdminSession, kind: str) -> bytes:
        return await self._render(request, session, self._kind(kind), html.Form())

    @app.route("/<kind>", methods=["POST"])
    @adminPage
    async def addGroup(self, request: IRequest, session: AdminSession, kind: str) -> bytes:
        kind = self._kind(kind)
        name = formValue(request, "name").strip()
        try:
            await self.admin.store.addGroup(kind, name, session.user)
        except StoreError as e:
            request.setResponseCode(400)
            return await self._render(request, session, kind,
                                      html.Form({"name": name}, {"name": str(e)}))
        await self.admin.changed()
        return await self._render(request, session, kind, html.Form(),
                                  html.notice(f"Group {name} was added.", "ok"))

    async def _group(self, kind: str, name: str) -> Group:
        for group in await self.admin.store.listGroups(kind):
            if group.name == name:
                return group  # type: ignore[no-any-return]
        raise PageNotFound(f"There is no {kind} group {name!r}; it may have been removed.")

    async def _renderGroup(
        self, request: IRequest, session: AdminSession, kind: str, group: Group,
        form: html.Form | None = None, message: html.Markup | None = None,
    ) -> bytes:
        base = f"/admin/groups/{kind}/{group.name}"
        csrf = session.csrfToken
        candidates: list[Any]
        if kind == "user":
            candidates = [u.name for u in await self.admin.store.listUsers()]
        else:
            candidates = [d.deviceId for d in await self.admin.store.listDevices()]
        options = [(c, c) for c in candidates if c not in group.members]
        rows = (
            [member, html.postForm(f"{base}/members/{member}/remove", csrf, html.Markup(""),
                                   "Take out", inline=True)]
            for member in group.members
        )
        addForm: html.Markup
        if options:
            addForm = html.postForm(
                f"{base}/members", csrf,
                html.select(form or html.Form(), "member",
                            "User" if kind == "user" else "Device", options, formId="member"),
                "Add to group",
            )
        else:
            addForm = html.Markup('<p class="hint">Every {what} is already a member.</p>').format(
                what="user" if kind == "user" else "device")
        body = (message or html.Markup("")) + html.table(
            ("Member", ""), rows, tableId="members", empty="The group is empty."
        ) + html.Markup("<h2>Add a member</h2>") + addForm + html.Markup(
            "<h2>Remove the group</h2>"
        ) + html.postForm(
            f"{base}/remove", csrf,
            html.Markup('<p class="hint">Rules that name this group are removed too.</p>'),
            "Remove group", danger=True,
        )
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        title = f"{'User' if kind == 'user' else 'Device'} group {group.name}"
        return html.page(title, body, user=session.user, csrfToken=csrf,
                         current=f"/admin/groups/{kind}")

    @app.route("/<kind>/<name>", methods=["GET"])
    @adminPage
    async def showGroup(self, request: IRequest, session: AdminSession, kind: str,
                        name: str) -> bytes:
        kind = self._kind(kind)
        return await self._renderGroup(request, session, kind, await self._group(kind, name))

    @app.route("/<kind>/<name>/members", methods=["POST"])
    @adminPage
    async def addMember(self, request: IRequest, session: AdminSession, kind: str,
                        name: str) -> bytes:
        kind = self._kind(kind)
        group = await self._group(kind, name)
        member = formValue(request, "member")
        try:
            await self.admin.store.addGroupMember(kind, name, member, session.user)
        except StoreError as e:
            request.setResponseCode(400)
            return await self._renderGroup(request, session, kind, group,
                                           html.Form({"member": member}, {"member": str(e)}))
        await self.admin.changed()
        return await self._renderGroup(request, session, kind, await self._group(kind, name),
                                       message=html.notice(f"{member} was added.", "ok"))

    @app.route("/<kind>/<name>/members/<member>/remove", methods=["POST"])
    @adminPage
    async def removeMember(self, request: IRequest, session: AdminSession, kind: str,
                           name: str, member: str) -> bytes:
        kind = self._kind(kind)
        await self._group(kind, name)
        await self.admin.store.removeGroupMember(kind, name, member, session.user)
        await self.admin.changed()
        return await self._renderGroup(request, session, kind, await self._group(kind, name),
                                       message=html.notice(f"{member} was taken out.", "ok"))

    @app.route("/<kind>/<name>/remove", methods=["POST"])
    @adminPage
    async def removeGroup(self, request: IRequest, session: AdminSession, kind: str,
                          name: str) -> bytes:
        kind = self._kind(kind)
        await self._group(kind, name)
        await self.admin.store.removeGroup(kind, name, session.user)
        await self.admin.changed()
        return await self._render(request, session, kind, html.Form(),
                                  html.notice(f"Group {name} was removed.", "ok"))


installErrorHandler(DevicePages.app)
installErrorHandler(UserPages.app)
installErrorHandler(GroupPages.app)
