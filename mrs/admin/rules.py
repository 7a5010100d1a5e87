"""
The permissions page: the rules (who, which devices, which rights, when),
adding and removing them, and the effective rights of one user on one
device with the rule behind each right.
"""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.web.iweb import IRequest

from mrs.admin import html
from mrs.admin.base import (
    RouteGroup,
    adminPage,
    formValue,
    formValues,
    installErrorHandler,
    queryValue,
)
from mrs.admin.sessions import AdminSession
from mrs.store.errors import AlreadyExists, InvalidValue, NotFound, StoreError
from mrs.store.models import RIGHTS, Rule, Schedule

WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

SUBJECT_KINDS = (("user", "user"), ("user_group", "user group"))
TARGET_KINDS = (("device", "device"), ("device_group", "device group"))


def describeSchedule(schedule: Schedule | None) -> str:
    """
    Describe when a rule applies, such as C{"Mon-Fri 08:00-17:00"}.
    """
    if schedule is None:
        return "always"
    days = sorted(schedule.days)
    if days == list(range(7)):
        dayText = "every day"
    else:
        dayText = ", ".join(WEEKDAYS[d] for d in days)
    return f"{dayText} {_clock(schedule.start)}-{_clock(schedule.end)}"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parseClock(text: str, name: str) -> int:
    """
    Parse C{"HH:MM"} as minutes after midnight (C{"24:00"} is 1440).

    @raise InvalidValue: naming the field and the format.
    """
    hours, sep, minutes = text.strip().partition(":")
    try:
        value = int(hours) * 60 + int(minutes)
    except ValueError:
        raise InvalidValue(name, text, "use a time such as 08:00 or 17:30")
    if not sep or not 0 <= int(minutes) < 60 or not 0 <= value <= 24 * 60:
        raise InvalidValue(name, text, "use a time from 00:00 to 24:00")
    return value


def parseSchedule(days: list[str], start: str, end: str) -> Schedule | None:
    """
    Build a rule's schedule from form values; no days and no times means
    the rule always applies.

    @raise InvalidValue: for an unknown day or a bad time.
    """
    if not days and not start.strip() and not end.strip():
        return None
    dayNumbers: set[int] = set()
    for day in days:
        if day not in WEEKDAYS:
            raise InvalidValue("weekday", day, f"use one of: {', '.join(WEEKDAYS)}")
        dayNumbers.add(WEEKDAYS.index(day))
    return Schedule(
        days=frozenset(dayNumbers) if dayNumbers else frozenset(range(7)),
        start=parseClock(start or "00:00", "start time"),
        end=parseClock(end or "24:00", "end time"),
    )


def ruleSubject(rule: Rule) -> str:
    return f"{'group ' if rule.subjectKind == 'user_group' else ''}{rule.subject}"


def ruleTarget(rule: Rule) -> str:
    return f"{'group ' if rule.targetKind == 'device_group' else ''}{rule.target}"


class PermissionPages(RouteGroup):
    """
    Rules and explanations, mounted at C{/admin/permissions}.
    """

    app = Klein()

    async def _render(
        self, request: IRequest, session: AdminSession, form: html.Form,
        message: html.Markup | None = None, explanation: html.Markup | None = None,
        explainForm: html.Form | None = None,
    ) -> bytes:
        csrf = session.csrfToken
        rules: list[Rule] = await self.admin.store.listRules()
        rows = (
            [
                str(rule.ruleId),
                ruleSubject(rule),
                ruleTarget(rule),
                ", ".join(r for r in RIGHTS if r in rule.rights),
                describeSchedule(rule.schedule),
                html.postForm(f"/admin/permissions/{rule.ruleId}/remove", csrf,
                              html.Markup(""), "Remove", inline=True, danger=True),
            ]
            for rule in rules
        )
        if not form.values.get("subjectKind"):
            form.values["subjectKind"] = "user"
        if not form.values.get("targetKind"):
            form.values["targetKind"] = "device"
        checkedRights = form.values.get("rights", "").split(",") if form.values.get(
            "rights") else []
        checkedDays = form.values.get("days", "").split(",") if form.values.get("days") else []
        addForm = html.postForm(
            "/admin/permissions", csrf,
            html.Markup('<div class="row">')
            + html.select(form, "subjectKind", "Who", SUBJECT_KINDS, formId="rule")
            + html.field(form, "subject", "User or user group name", required=True,
                         formId="rule")
            + html.Markup('</div><div class="row">')
            + html.select(form, "targetKind", "Which devices", TARGET_KINDS, formId="rule")
            + html.field(form, "target", "Device id or device group name", required=True,
                         formId="rule")
            + html.Markup("</div>")
            + html.checkboxes(form, "rights", "Rights", [(r, r) for r in RIGHTS],
                              checkedRights, formId="rule")
            + html.checkboxes(form, "days", "Days (none: every day)",
                              [(d, d) for d in WEEKDAYS], checkedDays, formId="rule")
            + html.Markup('<div class="row">')
            + html.field(form, "start", "From (HH:MM)", formId="rule",
                         hint="Empty: the rule always applies.")
            + html.field(form, "end", "Until (HH:MM)", formId="rule",
                         hint="An end before the start spans midnight.")
            + html.Markup("</div>"),
            "Add rule",
            formId="add-rule",
        )
        explainForm = explainForm or html.Form()
        explainBox = html.Markup(
            '<form method="get" action="/admin/permissions" class="stacked" id="explain">'
            '<div class="row">{user}{device}</div><button type="submit">Explain</button></form>'
        ).format(
            user=html.field(explainForm, "user", "User", formId="explain"),
            device=html.field(explainForm, "device", "Device id", formId="explain"),
        )
        body = (message or html.Markup("")) + html.table(
            ("Rule", "Who", "Devices", "Rights", "When", ""), rows, tableId="rules",
            empty="No rules yet: only administrators can see any device.",
        ) + html.Markup("<h2>Add a rule</h2>") + addForm + html.Markup(
            "<h2>Effective rights of a user on a device</h2>"
        ) + explainBox + (explanation or html.Markup(""))
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page("Permissions", body, user=session.user, csrfToken=csrf,
                         current="/admin/permissions")

    @app.route("/", strict_slashes=False, methods=["GET"])
    @adminPage
    async def listRules(self, request: IRequest, session: AdminSession) -> bytes:
        user = queryValue(request, "user").strip()
        device = queryValue(request, "device").strip()
        explanation = None
        explainForm = html.Form({"user": user, "device": device})
        if user or device:
            explanation = await self._explain(user, device, explainForm)
        return await self._render(request, session, html.Form(), explanation=explanation,
                                  explainForm=explainForm)

    async def _explain(self, user: str, device: str, form: html.Form) -> html.Markup | None:
        if await self.admin.store.getUser(user) is None:
            form.errors["user"] = f"There is no user {user!r}."
        if await self.admin.store.getDevice(device) is None:
            form.errors["device"] = f"There is no device {device!r}."
        if form.errors:
            return None
        grants = explainRights(self.admin.permissions, user, device)
        rows = (
            [right, "administrator role" if rule is None else
             f"rule {rule.ruleId}: {ruleSubject(rule)} on {ruleTarget(rule)}, "
             f"{describeSchedule(rule.schedule)}"]
            for right, rule in grants
        )
        return html.Markup("<h3>{user} on {device}</h3>").format(
            user=user, device=device
        ) + html.table(("Right", "Granted by"), rows, tableId="explanation",
                       empty="No rights: no rule grants this user anything on this device.")

    @app.route("/", strict_slashes=False, methods=["POST"])
    @adminPage
    async def addRule(self, request: IRequest, session: AdminSession) -> bytes:
        values = {
            name: formValue(request, name).strip()
            for name in ("subjectKind", "subject", "targetKind", "target", "start", "end")
        }
        rights = formValues(request, "rights")
        days = formValues(request, "days")
        form = html.Form({**values, "rights": ",".join(rights), "days": ",".join(days)})
        schedule = None
        if values["subjectKind"] not in dict(SUBJECT_KINDS):
            form.errors["subjectKind"] = "Choose user or user group."
        if values["targetKind"] not in dict(TARGET_KINDS):
            form.errors["targetKind"] = "Choose device or device group."
        if not rights:
            form.errors["rights"] = "Tick at least one right."
        try:
            schedule = parseSchedule(days, values["start"], values["end"])
        except InvalidValue as e:
            form.errors["end" if "end" in e.kind else "start"] = str(e)
        if not form.errors:
            try:
                await self.admin.store.addRule(
                    values["subjectKind"], values["subject"], values["targetKind"],
                    values["target"], rights, session.user, schedule=schedule,
                )
            except NotFound as e:
                where = "subject" if e.kind.startswith("user") else "target"
                form.errors[where] = str(e)
            except AlreadyExists as e:
                form.errors["subject"] = str(e)
            except StoreError as e:
                form.errors["rights"] = str(e)
        if form.errors:
            request.setResponseCode(400)
            return await self._render(request, session, form)
        await self.admin.changed()
        return await self._render(request, session, html.Form(),
                                  html.notice("The rule was added.", "ok"))

    @app.route("/<int:ruleId>/remove", methods=["POST"])
    @adminPage
    async def removeRule(self, request: IRequest, session: AdminSession, ruleId: int) -> bytes:
        await self.admin.store.removeRule(ruleId, session.user)
        await self.admin.changed()
        return await self._render(request, session, html.Form(),
                                  html.notice(f"Rule {ruleId} was removed.", "ok"))


def explainRights(permissions: Any, user: str, device: str) -> list[tuple[str, Rule | None]]:
    """
    Return C{permissions.explain(user, device)} in the order of L{RIGHTS};
    a L{None} rule stands for the administrator role.
    """
    grants = list(permissions.explain(user, device))
    order = {right: index for index, right in enumerate(RIGHTS)}
    grants.sort(key=lambda g: (order.get(g[0], len(order)), g[1] is not None,
                               g[1].ruleId if g[1] is not None else 0))
    return grants


installErrorHandler(PermissionPages.app)
