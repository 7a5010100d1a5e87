"""
The dashboard: connected devices and monitors, uptime and certificate
expiry, kept up to date with server-sent events at C{/admin/events}.

Without JavaScript the page refreshes itself every
L{NOSCRIPT_REFRESH} seconds instead.
"""

from __future__ import annotations

import json
from typing import Any

from klein import Klein
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.web.iweb import IRequest

from mrs.admin import html
from mrs.admin.base import RouteGroup, adminPage, installErrorHandler
from mrs.admin.sessions import AdminSession
from mrs.admin.status import formatLink, formatRates, serverStatus

#: Seconds between two server-sent status events.
EVENT_INTERVAL = 2.0
#: Seconds between refreshes of the page when JavaScript is off.
NOSCRIPT_REFRESH = 15

SESSION_HEADERS = (
    "Role", "Name", "Address", "Link", "Connected", "Bitrate in", "Bitrate out",
    "Watchers", "Last location",
)


def sessionRow(session: dict[str, Any]) -> list[object]:
    """
    Return the table cells of one connected client.
    """
    location = ""
    if session["lastLocation"] is not None:
        location = f"{session['lastLocation']['lat']:.5f}, {session['lastLocation']['lon']:.5f}"
        if session["lastLocationAge"] is not None:
            location += f" ({html.formatDuration(session['lastLocationAge'])} ago)"
    connected = ""
    if session["connectedSeconds"] is not None:
        connected = html.formatDuration(session["connectedSeconds"])
    link = formatLink(session)
    return [
        session["role"],
        session["name"],
        session["address"],
        html.Markup('<span class="{cls}">{text}</span>').format(
            cls="ok" if session["encrypted"] else "warn", text=link
        ),
        connected,
        formatRates(session["bitrateIn"]),
        formatRates(session["bitrateOut"]),
        _audience(session),
        location,
    ]


def _audience(session: dict[str, Any]) -> str:
    """
    Describe who watches a device, or what a monitor watches.
    """
    if session["role"] == "monitor":
        watched = ", ".join(session["subscriptions"]) or "nothing"
        if session["droppedFrames"]:
            watched += f" ({session['droppedFrames']} frames dropped)"
        return f"watches {watched}"
    return str(session["subscribers"])


class DashboardPages(RouteGroup):
    """
    The dashboard page and its event stream, mounted at C{/admin}.
    """

    app = Klein()

    @app.route("/", strict_slashes=False, methods=["GET"])
    @adminPage
    async def dashboard(self, request: IRequest, session: AdminSession) -> bytes:
        status = serverStatus(self.admin)
        certificate = status["certificate"]
        if certificate is None:
            certText: object = "not loaded yet"
        else:
            days = certificate["daysToExpiry"]
            certText = html.Markup(
                '<span class="{cls}">{days:.0f} days</span><small>until {date}</small>'
            ).format(cls="warn" if days < 30 else "ok", days=days,
                     date=certificate["notAfter"][:10])
        summary = html.Markup(
            '<dl class="summary">'
            '<div><dt>Uptime</dt><dd id="uptime">{uptime}</dd></div>'
            '<div><dt>Devices online</dt><dd id="devices-online">{devices}</dd></div>'
            '<div><dt>Monitors online</dt><dd id="monitors-online">{monitors}</dd></div>'
            '<div><dt>Certificate expires in</dt><dd id="certificate-expiry">{cert}</dd></div>'
            "</dl>"
        ).format(
            uptime=html.formatDuration(status["uptimeSeconds"]),
            devices=status["devicesOnline"],
            monitors=status["monitorsOnline"],
            cert=certText,
        )
        table = html.table(
            SESSION_HEADERS,
            (sessionRow(s) for s in status["sessions"]),
            tableId="sessions",
            empty="No devices or monitors are connected.",
        )
        body = summary + html.Markup(
            '<h2>Connected devices and monitors</h2>{table}'
            '<p class="hint"><span id="live-state">Updated {time}.</span> '
            '<a href="/admin">Reload</a></p>'
        ).format(table=table, time=html.formatTime(status["time"]))
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page(
            "Dashboard", body, user=session.user, csrfToken=session.csrfToken,
            current="/admin", refresh=NOSCRIPT_REFRESH, scripts=["/admin/static/app.js"],
        )

    @app.route("/events", methods=["GET"])
    @adminPage
    async def events(self, request: IRequest, session: AdminSession) -> bytes:
        """
        Stream the status as server-sent events until the client goes away,
        the session ends, or the account is no longer an enabled admin.
        """
        request.setHeader(b"content-type", b"text/event-stream")
        request.setHeader(b"cache-control", b"no-store")
        finished: Deferred[None] = Deferred()
        sessions = self.admin.sessions

        async def allowed() -> bool:
            if not sessions.isLive(session):
                return False
            user = await self.admin.store.getUser(session.user)
            return bool(
                user is not None and user.enabled and user.role == "admin"
                and user.credentialsVersion == session.credentialsVersion
            )

        async def send() -> None:
            if not await allowed():
                if not finished.called:
                    request.write(b"event: ended\ndata: {}\n\n")
                    stop()
                    request.finish()
                return
            if finished.called:
                return
            data = json.dumps(serverStatus(self.admin), sort_keys=True)
            request.write(b"event: status\ndata: " + data.encode("utf-8") + b"\n\n")

        loop = LoopingCall(lambda: Deferred.fromCoroutine(send()))
        loop.clock = self.admin.reactor

        def stop(_: object = None) -> None:
            if loop.running:
                loop.stop()
            if not finished.called:
                finished.callback(None)

        request.notifyFinish().addBoth(stop)  # type: ignore[attr-defined]
        loop.start(EVENT_INTERVAL, now=True).addErrback(
            lambda f: self.admin.log.failure("Dashboard event stream failed", f)
        )
        await finished
        return b""


installErrorHandler(DashboardPages.app)
