"""
The HTTPS admin web site: HTML pages under C{/admin}, the JSON API under
C{/api/v1} and Prometheus metrics at C{/metrics}.

L{AdminApp} contains everything the routes need; the routes themselves live in
route groups (L{mrs.admin.dashboard}, L{mrs.admin.accounts},
L{mrs.admin.rules}, L{mrs.admin.servertls}, L{mrs.admin.system},
L{mrs.admin.api}), each a Klein app mounted under its path prefix.
"""

from __future__ import annotations

import ipaddress
import secrets
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlsplit

from klein import Klein
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site
from werkzeug.routing import RequestRedirect

from mrs.admin import html
from mrs.admin.base import (
    MAX_BODY,
    CsrfRejected,
    Forbidden,
    LoginRequired,
    PasswordChangeRequired,
    TooManyRequests,
    checkBodySize,
    errorId,
    errorPage,
    formValue,
    installErrorHandler,
    isApiRequest,
    jsonResponse,
    loginRedirect,
    queryValue,
    statusFor,
)
from mrs.admin.sessions import (
    ACCOUNT_FAILURE_LIMIT,
    ADDRESS_FAILURE_LIMIT,
    THROTTLE_WINDOW,
    AdminSession,
    SessionManager,
    digest,
    tokensEqual,
)
from mrs.passwords import MIN_PASSWORD_LENGTH
from mrs.store.models import User
from mrs.throttle import LoginThrottle

#: Cookie of a signed-in session.  The C{__Host-} prefix makes browsers
#: insist on Secure, Path=/ and no Domain.
SESSION_COOKIE = b"__Host-mrs_session"
#: Cookie pairing the login form with the browser that loaded it.
LOGIN_COOKIE = b"__Host-mrs_login"

#: Headers sent with every admin response.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy",
     b"default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
     b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"cache-control", b"no-store"),
)


class Passwords(Protocol):
    """
    Password hashing as the admin site needs it; see L{ThreadedPasswords}.
    """

    def hash(self, password: str) -> Deferred[str]: ...

    def verify(self, passwordHash: str, password: str) -> Deferred[bool]: ...

    def generate(self) -> str: ...


class ThreadedPasswords:
    """
    L{Passwords} backed by L{mrs.passwords}, hashing in threads.
    """

    def hash(self, password: str) -> Deferred[str]:
        from mrs.passwords import hashPasswordInThread

        return hashPasswordInThread(password)

    def verify(self, passwordHash: str, password: str) -> Deferred[bool]:
        from mrs.passwords import verifyPasswordInThread

        return verifyPasswordInThread(passwordHash, password)

    def generate(self) -> str:
        from mrs.passwords import generatePassword

        return generatePassword()


class AdminApp:
    """
    The admin web site around one set of collaborators.

    @param store: an L{mrs.store.interface.IStore}.
    @param tls: the L{mrs.tls.TLSMaterial} (C{current}, C{daysToExpiry},
        C{check}, C{install}, C{generate}, C{pendingRequest},
        C{minVersionWarning}).
    @param hub: provides C{statusSnapshot()}.
    @param permissions: provides C{explain(user, device)} and, optionally,
        C{refreshNow()}.
    @param config: the server's L{mrs.config.Config}.
    @param reactor: time source and scheduler for sessions, throttling and
        the live dashboard.
    @param metrics: the L{mrs.metrics.Metrics} served at C{/metrics}, or
        L{None} for a site without metrics.
    @param passwords: password hashing; the default hashes in threads.
    """

    app = Klein()
    log = Logger()

    def __init__(
        self,
        store: Any,
        tls: Any,
        hub: Any,
        permissions: Any,
        config: Any,
        reactor: IReactorTime,
        metrics: Any = None,
        *,
        passwords: Passwords | None = None,
    ) -> None:
        from mrs.admin.accounts import DevicePages, GroupPages, UserPages
        from mrs.admin.api import ApiV1
        from mrs.admin.dashboard import DashboardPages
        from mrs.admin.rules import PermissionPages
        from mrs.admin.servertls import ServerAuthenticationPages
        from mrs.admin.system import AuditPages, SettingsPages

        self.store = store
        self.tls = tls
        self.hub = hub
        self.permissions = permissions
        self.config = config
        self.reactor = reactor
        self.metrics = metrics
        self.passwords: Passwords = passwords if passwords is not None else ThreadedPasswords()
        self.started = reactor.seconds()
        self.sessions = SessionManager(
            reactor, config.session_idle_timeout, config.session_max_age
        )
        self.accountThrottle = LoginThrottle(reactor, ACCOUNT_FAILURE_LIMIT, THROTTLE_WINDOW)
        self.addressThrottle = LoginThrottle(reactor, ADDRESS_FAILURE_LIMIT, THROTTLE_WINDOW)
        self._dummyHash: str | None = None
        self._static = _loadStatic()

        self.dashboard = DashboardPages(self)
        self.devices = DevicePages(self)
        self.users = UserPages(self)
        self.groups = GroupPages(self)
        self.permissionPages = PermissionPages(self)
        self.serverAuthentication = ServerAuthenticationPages(self)
        self.settings = SettingsPages(self)
        self.audit = AuditPages(self)
        self.api = ApiV1(self)

    def resource(self) -> IResource:
        """
        Return the site's root resource, which adds the security headers
        to every response.
        """
        return _SecurityHeaders(self.app.resource())

    def site(self) -> Site:
        """
        Return a L{Site} for the admin listener, with tracebacks hidden.
        """
        site = Site(self.resource())
        site.displayTracebacks = False
        site.requestFactory = LimitedRequest
        return site

    # Authentication helpers used by every route group.

    async def pageSession(self, request: IRequest) -> AdminSession:
        """
        Return the signed-in administrator's session for an HTML request.

        @raise LoginRequired: no live session (the error handler redirects).
        @raise Forbidden: the account is no longer an enabled admin.
        @raise CsrfRejected: a POST without the session's CSRF token.
        @raise PasswordChangeRequired: the account still has its one-time
            password (the error handler redirects to the password page).
        """
        session = self.sessions.get(_cookie(request, SESSION_COOKIE))
        if session is None:
            raise LoginRequired("Sign in to continue.")
        user: User | None = await self.store.getUser(session.user)
        if (
            user is None
            or not user.enabled
            or user.credentialsVersion != session.credentialsVersion
        ):
            self.sessions.end(session)
            raise LoginRequired("Your session has ended; sign in again.")
        if user.role != "admin":
            self.sessions.end(session)
            raise Forbidden("Only administrators may use the admin site.")
        if request.method == b"POST":
            checkBodySize(request)
            if not tokensEqual(session.csrfToken, formValue(request, "csrf")):
                raise CsrfRejected()
        if user.mustChangePassword and request.path != b"/admin/account":
            raise PasswordChangeRequired()
        return session

    async def apiUser(self, request: IRequest) -> str:
        """
        Return the name of the administrator whose API token authorizes
        the request.

        @raise LoginRequired: no token, or an unknown one.
        @raise Forbidden: the token's account is not an enabled admin.
        """
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise LoginRequired("Send an API token as 'Authorization: Bearer TOKEN'.")
        record = await self.store.findApiToken(digest(token.strip()))
        if record is None:
            raise LoginRequired("The API token is not valid; create a new one on your user page.")
        user = await self.store.getUser(record.user)
        if user is None or not user.enabled or user.role != "admin":
            raise Forbidden("Only enabled administrators' API tokens may use the API.")
        return str(record.user)

    async def changed(self) -> None:
        """
        Ask the permission service to reload after a change in the store.
        """
        refresh = getattr(self.permissions, "refreshNow", None)
        if refresh is None:
            return
        try:
            await refresh()
        except Exception:
            # The change is stored; the permission service's own polling
            # picks it up within a second, so the request still succeeds.
            self.log.failure("Reloading the permissions after an admin change failed")

    def renderError(self, request: IRequest, failure: Failure) -> bytes:
        """
        Turn an exception into an error page or JSON body, logging the
        unexpected ones under an id that the page shows.
        """
        if isinstance(failure.value, RequestRedirect):
            request.setResponseCode(308)
            request.setHeader(b"location", failure.value.new_url.encode("utf-8"))
            return b""
        status, message = statusFor(failure)
        if status == 500:
            ident = errorId()
            self.log.failure(
                "Admin request {method} {path} failed (error id {errorId})",
                failure,
                method=request.method.decode("ascii", "replace"),
                path=request.path.decode("ascii", "replace"),
                errorId=ident,
            )
            message = (
                f"Something went wrong on the server (error id {ident}). "
                "The details are in the server log under this id."
            )
        api = isApiRequest(request)
        if api:
            if status == 401:
                request.setHeader(b"www-authenticate", b'Bearer realm="mrs"')
            return jsonResponse(request, status, {"error": message})

        if isinstance(failure.value, LoginRequired):
            request.addCookie(SESSION_COOKIE, b"", **_cookieFlags(maxAge=0))
            return loginRedirect(request)
        if isinstance(failure.value, PasswordChangeRequired) and request.method == b"GET":
            request.setResponseCode(303)
            request.setHeader(b"location", b"/admin/account")
            return b""

        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        session = self.sessions.get(_cookie(request, SESSION_COOKIE))
        return errorPage(
            status,
            message,
            session.user if session else None,
            session.csrfToken if session else None,
        )

    # Top-level routes.

    @app.route("/", strict_slashes=False, methods=["GET", "HEAD"])
    def root(self, request: IRequest) -> bytes:
        request.setResponseCode(302)
        request.setHeader(b"location", b"/admin")
        return b""

    @app.route("/admin/static/<name>", methods=["GET", "HEAD"])
    def static(self, request: IRequest, name: str) -> bytes:
        found = self._static.get(name)
        if found is None:
            raise _notFound()
        contentType, content = found
        request.setHeader(b"content-type", contentType)
        request.setHeader(b"cache-control", b"max-age=3600")
        return content

    @app.route("/admin/login", methods=["GET"])
    def loginPage(self, request: IRequest) -> bytes:
        return self._renderLogin(request, html.Form(), None)

    @app.route("/admin/login", methods=["POST"])
    async def login(self, request: IRequest) -> bytes:
        checkBodySize(request)
        if not tokensEqual(
            _cookie(request, LOGIN_COOKIE) or "", formValue(request, "csrf")
        ):
            raise CsrfRejected()
        name = formValue(request, "username").strip()
        password = formValue(request, "password")
        form = html.Form({"username": name})
        address = _clientAddress(request)

        accountKey = f"{name}\x00{address}"
        wait = max(self.accountThrottle.retryAfter(accountKey),
                   self.addressThrottle.retryAfter(address))
        if wait > 0:
            self.log.warn(
                "Admin login for {user!r} from {address} throttled",
                user=name, address=address,
            )
            minutes = max(1, round(wait / 60))
            raise TooManyRequests(
                f"Too many failed sign-ins for this account or from this address; "
                f"try again in {minutes} minute{'s' if minutes != 1 else ''}."
            )

        user: User | None = await self.store.getUser(name) if name else None
        ok = False
        if user is not None:
            ok = await self.passwords.verify(user.passwordHash, password)
        else:
            await self.passwords.verify(await self._dummyPasswordHash(), password)
        if not ok or user is None or not user.enabled:
            self.accountThrottle.failed(accountKey)
            self.addressThrottle.failed(address)
            self._countLogin(False)
            self.log.warn(
                "Admin login for {user!r} from {address} failed", user=name, address=address
            )
            form.errors["password"] = "The user name or password is not correct."  # noqa: S105
            request.setResponseCode(401)
            return self._renderLogin(request, form, None)
        if user.role != "admin":
            self._countLogin(False)
            self.log.warn(
                "Admin login for operator {user!r} from {address} rejected",
                user=name, address=address,
            )
            request.setResponseCode(403)
            return self._renderLogin(
                request, form,
                "This account is an operator account; only administrators may sign in here.",
            )

        self.accountThrottle.succeeded(accountKey)
        self.addressThrottle.succeeded(address)
        self._countLogin(True)
        sessionId, _ = self.sessions.create(user.name, user.credentialsVersion)
        request.addCookie(
            SESSION_COOKIE, sessionId.encode("ascii"),
            **_cookieFlags(maxAge=int(self.config.session_max_age)),
        )
        request.addCookie(LOGIN_COOKIE, b"", **_cookieFlags(maxAge=0))
        self.log.info("Admin {user!r} signed in from {address}", user=name, address=address)
        target = queryValue(request, "next")
        if user.mustChangePassword or not _isLocalPath(target):
            target = "/admin/account" if user.mustChangePassword else "/admin"
        request.setResponseCode(303)
        request.setHeader(b"location", target.encode("utf-8"))
        return b""

    @app.route("/admin/logout", methods=["POST"])
    async def logout(self, request: IRequest) -> bytes:
        session = self.sessions.get(_cookie(request, SESSION_COOKIE))
        if session is not None:
            if not tokensEqual(session.csrfToken, formValue(request, "csrf")):
                raise CsrfRejected()
            self.sessions.end(session)
            self.log.info("Admin {user!r} signed out", user=session.user)
        request.addCookie(SESSION_COOKIE, b"", **_cookieFlags(maxAge=0))
        request.setResponseCode(303)
        request.setHeader(b"location", b"/admin/login")
        return b""

    @app.route("/admin/account", methods=["GET"])
    async def accountPage(self, request: IRequest) -> bytes:
        session = await self.pageSession(request)
        user = await self.store.getUser(session.user)
        return self._renderAccount(session, user, html.Form(), None)

    @app.route("/admin/account", methods=["POST"])
    async def changePassword(self, request: IRequest) -> bytes:
        session = await self.pageSession(request)
        user = await self.store.getUser(session.user)
        current = formValue(request, "current")
        new = formValue(request, "new")
        repeat = formValue(request, "repeat")
        form = html.Form()
        if not await self.passwords.verify(user.passwordHash, current):
            form.errors["current"] = "This is not your current password."
        elif len(new) < MIN_PASSWORD_LENGTH:
            form.errors["new"] = (
                f"Use at least {MIN_PASSWORD_LENGTH} characters; a passphrase of "
                "several words is easy to remember."
            )
        elif new == current:
            form.errors["new"] = "Choose a password different from the current one."
        elif new != repeat:
            form.errors["repeat"] = "The two new passwords differ; type the same one twice."
        if form.errors:
            request.setResponseCode(400)
            return self._renderAccount(session, user, form, None)
        newHash = await self.passwords.hash(new)
        await self.store.setUserPassword(user.name, newHash, session.user,
                                         mustChangePassword=False)
        updated = await self.store.getUser(user.name)
        session.credentialsVersion = updated.credentialsVersion
        self.sessions.endAllFor(user.name, keep=session)
        self.log.info("Admin {user!r} changed their password", user=user.name)
        return self._renderAccount(session, updated, html.Form(), "Your password was changed.")

    @app.route("/metrics", methods=["GET"])
    def metricsPage(self, request: IRequest) -> bytes:
        if not self._metricsAllowed(request):
            request.setResponseCode(401)
            request.setHeader(b"www-authenticate", b'Bearer realm="metrics"')
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return (
                b"Metrics need 'Authorization: Bearer' with the configured metrics_token, "
                b"or a request from one of metrics_addresses.\n"
            )
        if self.metrics is None:
            raise _notFound()
        body, contentType = self.metrics.render()
        request.setHeader(b"content-type", contentType.encode("ascii"))
        return body  # type: ignore[no-any-return]

    # Mounted route groups.

    @app.route("/admin", branch=True, strict_slashes=False)
    def mountDashboard(self, request: IRequest) -> IResource:
        return self.dashboard.app.resource()  # type: ignore[no-any-return]

    @app.route("/admin/devices", branch=True, strict_slashes=False)
    def mountDevices(self, request: IRequest) -> IResource:
        return self.devices.app.resource()  # type: ignore[no-any-return]

    @app.route("/admin/users", branch=True, strict_slashes=False)
    def mountUsers(self, request: IRequest) -> IResource:
        return self.users.app.resource()  # type: ignore[no-any-return]

    @app.route("/admin/groups", branch=True, strict_slashes=False)
    def mountGroups(self, request: IRequest) -> IResource:
        return self.groups.app.resource()  # type: ignore[no-any-return]

    @app.route("/admin/permissions", branch=True, strict_slashes=False)
    def mountPermissions(self, request: IRequest) -> IResource:
        return self.permissionPages.app.resource()  # type: ignore[no-any-return]

    @app.route("/admin/server-authentication", branch=True, strict_slashes=False)
    def mountServerAuthentication(self, request: IRequest) -> IResource:
        return self.serverAuthentication.app.resource()  # type: ignore[no-any-return]

    @app.route("/admin/settings", branch=True, strict_slashes=False)
    def mountSettings(self, request: IRequest) -> IResource:
        return self.settings.app.resource()  # type: ignore[no-any-return]

    @app.route("/admin/audit", branch=True, strict_slashes=False)
    def mountAudit(self, request: IRequest) -> IResource:
        return self.audit.app.resource()  # type: ignore[no-any-return]

    @app.route("/api/v1", branch=True, strict_slashes=False)
    def mountApi(self, request: IRequest) -> IResource:
        return self.api.app.resource()  # type: ignore[no-any-return]

    # Internals.

    async def _dummyPasswordHash(self) -> str:
        if self._dummyHash is None:
            # A login for a missing account verifies against this hash of a
            # random password, so it takes as long as one for a real account.
            self._dummyHash = await self.passwords.hash(secrets.token_urlsafe(16))
        return self._dummyHash

    def _countLogin(self, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.login("admin", ok)

    def _metricsAllowed(self, request: IRequest) -> bool:
        token = self.config.metrics_token
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        scheme, _, given = header.partition(" ")
        if token and scheme.lower() == "bearer" and tokensEqual(token, given.strip()):
            return True
        address = _clientAddress(request)
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        for allowed in self.config.metrics_addresses:
            if parsed in ipaddress.ip_network(allowed, strict=False):
                return True
        return False

    def _renderLogin(self, request: IRequest, form: html.Form, message: str | None) -> bytes:
        loginToken = _cookie(request, LOGIN_COOKIE)
        if not loginToken:
            loginToken = secrets.token_urlsafe(32)
            request.addCookie(LOGIN_COOKIE, loginToken.encode("ascii"),
                              **_cookieFlags(maxAge=3600))
        nextPath = queryValue(request, "next")
        action = "/admin/login"
        if _isLocalPath(nextPath):
            action += "?next=" + nextPath
        body = html.postForm(
            action,
            loginToken,
            html.field(form, "username", "User name", required=True, autocomplete="username")
            + html.field(form, "password", "Password", kind="password", required=True,
                         autocomplete="current-password", keepValue=False),
            "Sign in",
            errors=message,
        )
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page("Sign in", body)

    def _renderAccount(
        self, session: AdminSession, user: User, form: html.Form, done: str | None
    ) -> bytes:
        intro = html.Markup("")
        if user.mustChangePassword:
            intro = html.notice(
                "You signed in with a one-time password. Choose your own password "
                "to continue.", "warning",
            )
        if done:
            intro += html.notice(done, "ok")
        body = intro + html.postForm(
            "/admin/account",
            session.csrfToken,
            html.field(form, "current", "Current password", kind="password", required=True,
                       autocomplete="current-password", keepValue=False)
            + html.field(form, "new", "New password", kind="password", required=True,
                         autocomplete="new-password", keepValue=False,
                         hint=f"At least {MIN_PASSWORD_LENGTH} characters.")
            + html.field(form, "repeat", "New password again", kind="password",
                         required=True, autocomplete="new-password", keepValue=False),
            "Change password",
        )
        return html.page("Your password", body, user=session.user,
                         csrfToken=session.csrfToken, current="/admin/account")


installErrorHandler(AdminApp.app)


class LimitedRequest(Request):
    """
    A request that stops storing its body past L{MAX_BODY} bytes; such a
    request gets a 413 response instead of being routed.
    """

    bodyTooLarge = False
    _received = 0

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > MAX_BODY:
            self.bodyTooLarge = True
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self.bodyTooLarge and self.content is not None:
            # Drop the stored part, so that nothing of it is parsed as a form.
            self.content.seek(0, 0)
            self.content.truncate()
        super().requestReceived(command, path, version)


class _SecurityHeaders(Resource):
    """
    Set the headers every admin response carries, then render the site.
    """

    isLeaf = True

    def __init__(self, wrapped: IResource) -> None:
        super().__init__()
        self._wrapped = wrapped

    def render(self, request: IRequest) -> Any:  # type: ignore[override]
        for name, value in SECURITY_HEADERS:
            request.setHeader(name, value)
        if getattr(request, "bodyTooLarge", False):
            request.setResponseCode(413)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return (f"The request body is larger than {MAX_BODY} bytes; "
                    "send a smaller file.\n").encode()
        return self._wrapped.render(request)


def _cookie(request: IRequest, name: bytes) -> str | None:
    value = request.getCookie(name)
    if not value:
        return None
    return str(value.decode("ascii", "replace"))


def _cookieFlags(maxAge: int) -> dict[str, Any]:
    return {
        "path": b"/",
        "secure": True,
        "httpOnly": True,
        "sameSite": "strict",
        "max_age": str(maxAge).encode("ascii"),
    }


def _clientAddress(request: IRequest) -> str:
    peer = request.getClientAddress()
    return str(getattr(peer, "host", "unknown"))


def _isLocalPath(target: str) -> bool:
    if not target.startswith("/admin") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and "\\" not in target


def _notFound() -> Exception:
    from mrs.admin.base import PageNotFound

    return PageNotFound("There is no page at this address.")


def _loadStatic() -> dict[str, tuple[bytes, bytes]]:
    types = {".css": b"text/css; charset=utf-8", ".js": b"text/javascript; charset=utf-8"}
    result: dict[str, tuple[bytes, bytes]] = {}
    folder = resources.files("mrs.admin").joinpath("static")
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in types:
            result[entry.name] = (types[suffix], entry.read_bytes())
    return result

