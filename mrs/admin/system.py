"""
The settings page and the audit log.

Settings come from the configuration file and the command line.  Those that
the server reads only at start are shown read-only, saying so; those whose
L{mrs.config.Setting.restart} is false can be changed here, and the new
value is stored as the store setting C{config.<key>} (and audited) for the
services to pick up.
"""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.web.iweb import IRequest

from mrs.admin import html
from mrs.admin.base import (
    PageNotFound,
    RouteGroup,
    adminPage,
    formValue,
    installErrorHandler,
    queryValue,
)
from mrs.admin.sessions import AdminSession
from mrs.config import SCHEMA, SETTINGS_BY_KEY, Setting

#: Store setting key prefix for values changed on the settings page.
STORED_PREFIX = "config."
#: Audit entries shown at most on one page.
AUDIT_LIMIT = 200


def minVersionWarning(config: Any, tls: Any) -> str | None:
    """
    Return the warning about a minimum TLS version below 1.2, or L{None}.
    """
    if config.min_tls_version not in ("1.0", "1.1"):
        return None
    warning = getattr(tls, "minVersionWarning", None)
    if isinstance(warning, str) and warning:
        return warning
    return (
        f"The minimum TLS version is {config.min_tls_version}. TLS 1.0 and 1.1 are "
        "deprecated (RFC 8996); set min_tls_version = 1.2 once no legacy client needs it."
    )


def displayValue(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


async def effectiveSettings(store: Any, config: Any) -> dict[str, object]:
    """
    Return every setting's value in use: the stored value for a setting
    changed on this page, else the configured one.
    """
    values: dict[str, object] = {}
    for setting in SCHEMA:
        values[setting.key] = getattr(config, setting.key)
        if not setting.restart:
            stored = await store.getSetting(STORED_PREFIX + setting.key)
            if stored is not None:
                values[setting.key] = setting.parse(stored)
    return values


class SettingsPages(RouteGroup):
    """
    Mounted at C{/admin/settings}.
    """

    app = Klein()

    async def _render(self, request: IRequest, session: AdminSession,
                      form: html.Form | None = None,
                      message: html.Markup | None = None) -> bytes:
        config = self.admin.config
        values = await effectiveSettings(self.admin.store, config)
        csrf = session.csrfToken
        warning = minVersionWarning(config, self.admin.tls)
        body = message or html.Markup("")
        if warning:
            body += html.notice(warning, "warning")
        if config.allow_plaintext:
            body += html.notice(
                "Plaintext logins are allowed: devices and monitors may send passwords and "
                "media unencrypted. Set allow_plaintext = false unless a legacy client needs "
                "it.", "warning")
        section = None
        rows: list[list[object]] = []
        sections = html.Markup("")

        def flush() -> html.Markup:
            return html.Markup("<h2>{s}</h2>").format(s=section) + html.table(
                ("Setting", "Value", "Applies", "Meaning"), rows)

        for setting in SCHEMA:
            if setting.key == "metrics_token":
                value = "set" if config.metrics_token else "not set"
            else:
                value = displayValue(values[setting.key])
            if setting.section != section:
                if section is not None:
                    sections += flush()
                section = setting.section
                rows = []
            if setting.restart:
                applies: object = "after a restart"
                cell: object = value
            else:
                applies = "at once"
                fieldForm = html.Form({setting.key: value})
                if form is not None and setting.key in form.values:
                    fieldForm = form
                cell = html.postForm(
                    f"/admin/settings/{setting.key}", csrf,
                    html.field(fieldForm, setting.key, f"New value of {setting.key}",
                               formId="setting"),
                    "Save", inline=True,
                )
            rows.append([html.Markup("<code>{k}</code>").format(k=setting.key), cell, applies,
                         setting.help])
        sections += flush()
        body += html.Markup(
            '<p class="hint">Read from {source}. Settings that apply after a restart are '
            "changed in that file or on the command line.</p>{sections}"
        ).format(source=config.source, sections=sections)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page("Settings", body, user=session.user, csrfToken=csrf,
                         current="/admin/settings")

    @app.route("/", strict_slashes=False, methods=["GET"])
    @adminPage
    async def show(self, request: IRequest, session: AdminSession) -> bytes:
        return await self._render(request, session)

    @app.route("/<key>", methods=["POST"])
    @adminPage
    async def change(self, request: IRequest, session: AdminSession, key: str) -> bytes:
        setting = liveSetting(key)
        text = formValue(request, key).strip()
        try:
            setting.parse(text)
        except ValueError as e:
            request.setResponseCode(400)
            return await self._render(
                request, session, html.Form({key: text}, {key: f"{text!r} is invalid: {e}"}))
        await self.admin.store.setSetting(STORED_PREFIX + key, text, session.user)
        await self.admin.changed()
        return await self._render(request, session,
                                  message=html.notice(f"{key} was set to {text}.", "ok"))


def liveSetting(key: str) -> Setting:
    """
    Return the setting C{key} if it can change without a restart.

    @raise PageNotFound: for an unknown key or one that needs a restart.
    """
    setting = SETTINGS_BY_KEY.get(key)
    if setting is None or setting.restart:
        raise PageNotFound(
            f"{key!r} is not a setting that can change while the server runs; "
            "change it in the configuration file and restart."
        )
    return setting


class AuditPages(RouteGroup):
    """
    Mounted at C{/admin/audit}.
    """

    app = Klein()

    @app.route("/", strict_slashes=False, methods=["GET"])
    @adminPage
    async def show(self, request: IRequest, session: AdminSession) -> bytes:
        actor = queryValue(request, "actor").strip()
        action = queryValue(request, "action").strip()
        obj = queryValue(request, "object").strip()
        entries = await self.admin.store.listAudit(
            actor=actor or None, action=action or None, object=obj or None, limit=AUDIT_LIMIT,
        )
        form = html.Form({"actor": actor, "action": action, "object": obj})
        filters = html.Markup(
            '<form method="get" action="/admin/audit" class="stacked" id="audit-filter">'
            '<div class="row">{a}{b}{c}</div><button type="submit">Filter</button></form>'
        ).format(
            a=html.field(form, "actor", "Actor (exact)", formId="filter"),
            b=html.field(form, "action", "Action (prefix, such as user.)", formId="filter"),
            c=html.field(form, "object", "Object (contains)", formId="filter"),
        )
        rows = (
            [html.formatTime(e.time), e.actor, e.action, e.object, e.detail] for e in entries
        )
        body = filters + html.table(
            ("Time", "Actor", "Action", "Object", "Detail"), rows, tableId="audit",
            empty="No audit entries match.",
        )
        if len(entries) == AUDIT_LIMIT:
            body += html.Markup(
                '<p class="hint">Showing the newest {n} entries; filter to see older ones.</p>'
            ).format(n=AUDIT_LIMIT)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page("Audit log", body, user=session.user, csrfToken=session.csrfToken,
                         current="/admin/audit")


installErrorHandler(SettingsPages.app)
installErrorHandler(AuditPages.app)
