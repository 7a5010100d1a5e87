"""
Tests for the admin web site's sign-in, sessions, authorization, CSRF
protection, throttling and error pages, without sockets.
"""

from __future__ import annotations

import json

from twisted.internet.defer import fail
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from mrs.admin.sessions import ACCOUNT_FAILURE_LIMIT, ADDRESS_FAILURE_LIMIT, THROTTLE_WINDOW
from tests.fakes_admin import ADMIN_PASSWORD, OPERATOR_PASSWORD, AdminFixture
from tests.support import fastHash

#: Every HTML page a signed-in administrator can open with GET.
PAGES = (
    "/admin",
    "/admin/devices",
    "/admin/devices/cam-1",
    "/admin/users",
    "/admin/users/alice",
    "/admin/groups/user",
    "/admin/groups/device",
    "/admin/permissions",
    "/admin/server-authentication",
    "/admin/server-authentication/certificate.pem",
    "/admin/settings",
    "/admin/audit",
    "/admin/account",
)

#: State-changing forms with the data of a valid submission.
FORMS: tuple[tuple[str, dict[str, object]], ...] = (
    ("/admin/devices", {"deviceId": "cam-9", "displayName": "Nine"}),
    ("/admin/devices/cam-1", {"displayName": "Renamed"}),
    ("/admin/devices/cam-1/enabled", {"enabled": "off"}),
    ("/admin/devices/cam-1/secret", {}),
    ("/admin/devices/cam-1/remove", {}),
    ("/admin/users", {"name": "carol", "role": "operator"}),
    ("/admin/users/alice", {"role": "admin"}),
    ("/admin/users/alice/enabled", {"enabled": "off"}),
    ("/admin/users/alice/password", {}),
    ("/admin/users/alice/remove", {}),
    ("/admin/users/root/tokens", {"label": "script"}),
    ("/admin/groups/user", {"name": "crew"}),
    ("/admin/permissions", {"subjectKind": "user", "subject": "alice",
                            "targetKind": "device", "target": "cam-1", "rights": "video"}),
    ("/admin/server-authentication/generate", {"keyType": "ec-p256", "mode": "self-signed"}),
    ("/admin/settings/time_zone", {"time_zone": "Europe/Ljubljana"}),
)

#: JSON API routes, one per kind of operation.
API_ROUTES = (
    ("GET", "/api/v1/status"),
    ("GET", "/api/v1/devices"),
    ("GET", "/api/v1/devices/cam-1"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/groups/user"),
    ("GET", "/api/v1/rules"),
    ("GET", "/api/v1/certificate"),
    ("GET", "/api/v1/settings"),
    ("GET", "/api/v1/audit"),
    ("POST", "/api/v1/devices"),
    ("DELETE", "/api/v1/devices/cam-1"),
)


class RootTests(SynchronousTestCase):
    def test_rootRedirects(self) -> None:
        """
        C{/} redirects to C{/admin}.
        """
        fixture = AdminFixture(self)
        response = fixture.browser().get("/")
        self.assertEqual(response.code, 302)
        self.assertEqual(response.headers.getRawHeaders("location"), ["/admin"])

    def test_securityHeaders(self) -> None:
        """
        Every response forbids framing and external resources and is not
        cached.
        """
        fixture = AdminFixture(self)
        response = fixture.browser().get("/admin/login")
        headers = response.headers
        self.assertIn("default-src 'none'", headers.getRawHeaders("content-security-policy")[0])
        self.assertEqual(headers.getRawHeaders("x-frame-options"), ["DENY"])
        self.assertEqual(headers.getRawHeaders("x-content-type-options"), ["nosniff"])
        self.assertEqual(headers.getRawHeaders("cache-control"), ["no-store"])

    def test_staticFiles(self) -> None:
        """
        The stylesheet and script are served from the package.
        """
        browser = AdminFixture(self).browser()
        response = browser.get("/admin/static/style.css")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders("content-type"),
                         ["text/css; charset=utf-8"])
        self.assertIn(":root", browser.lastBody)
        self.assertEqual(browser.get("/admin/static/app.js").code, 200)
        self.assertEqual(browser.get("/admin/static/missing.css").code, 404)

    def test_unknownPage(self) -> None:
        """
        An unknown address under C{/admin} gives a 404 page to an admin.
        """
        browser = AdminFixture(self).signedIn()
        response = browser.get("/admin/nothing-here")
        self.assertEqual(response.code, 404)
        self.assertIn("There is no page at this address.", browser.lastBody)


class AuthorizationTests(SynchronousTestCase):
    def test_anonymousPagesRedirectToLogin(self) -> None:
        """
        Without a session every page redirects to the login page, which
        comes back to the page afterwards.
        """
        fixture = AdminFixture(self)
        for path in PAGES:
            response = fixture.browser().get(path)
            self.assertEqual(response.code, 303, path)
            self.assertEqual(response.headers.getRawHeaders("location"),
                             [f"/admin/login?next={path}"], path)

    def test_anonymousFormsRedirectToLogin(self) -> None:
        """
        Without a session a form submission changes nothing and redirects
        to the login page.
        """
        fixture = AdminFixture(self)
        before = fixture.audit()
        for path, data in FORMS:
            response = fixture.browser().post(path, data, csrf=False)
            self.assertEqual(response.code, 303, path)
        self.assertIsNone(self.successResultOf(fixture.store.getDevice("cam-9")))
        self.assertEqual(fixture.audit(), before)

    def test_anonymousApi(self) -> None:
        """
        Without a token the API responds 401 with a JSON error.
        """
        fixture = AdminFixture(self)
        for method, path in API_ROUTES:
            browser = fixture.browser()
            response = browser.request(method, path)
            self.assertEqual(response.code, 401, path)
            self.assertEqual(response.headers.getRawHeaders("www-authenticate"),
                             ['Bearer realm="mrs"'])
            self.assertEqual(json.loads(browser.lastBody),
                             {"error": "Send an API token as 'Authorization: Bearer TOKEN'."})

    def test_unknownApiToken(self) -> None:
        """
        An unknown token is refused with 401.
        """
        fixture = AdminFixture(self)
        browser = fixture.browser()
        response = browser.get("/api/v1/devices", headers={"Authorization": "Bearer nope"})
        self.assertEqual(response.code, 401)
        self.assertEqual(json.loads(browser.lastBody)["error"],
                         "The API token is not valid; create a new one on your user page.")

    def test_operatorCannotSignIn(self) -> None:
        """
        An operator's correct password does not open a session.
        """
        fixture = AdminFixture(self)
        browser = fixture.browser()
        response = browser.login("alice", OPERATOR_PASSWORD)
        self.assertEqual(response.code, 403)
        self.assertIn("only administrators may sign in here", browser.lastBody)
        self.assertFalse(any(c.startswith("__Host-mrs_session=") and "Max-Age=0" not in c
                             for c in browser.setCookies(response)))
        self.assertEqual(len(fixture.app.sessions), 0)

    def test_operatorTokenRefused(self) -> None:
        """
        An operator's API token is refused with 403 on every route.
        """
        fixture = AdminFixture(self)
        token = fixture.apiToken("alice")
        for method, path in API_ROUTES:
            browser = fixture.browser()
            response = browser.request(method, path,
                                        headers={"Authorization": f"Bearer {token}"})
            self.assertEqual(response.code, 403, path)
            self.assertEqual(
                json.loads(browser.lastBody),
                {"error": "Only enabled administrators' API tokens may use the API."},
            )
        self.assertIsNotNone(self.successResultOf(fixture.store.getDevice("cam-1")))

    def test_demotedAdminRefused(self) -> None:
        """
        An admin who became an operator loses the session at the next
        request, and nothing is changed.
        """
        fixture = AdminFixture(self)
        fixture.store.addUser("second", "admin", fastHash(ADMIN_PASSWORD), "test")
        browser = fixture.signedIn("second")
        browser.get("/admin/devices")
        fixture.store.setUserRole("second", "operator", "root")
        response = browser.post("/admin/devices", {"deviceId": "cam-9"})
        self.assertEqual(response.code, 403)
        self.assertIn("Only administrators may use the admin site.", browser.lastBody)
        self.assertIsNone(self.successResultOf(fixture.store.getDevice("cam-9")))
        self.assertEqual(browser.get("/admin").code, 303)

    def test_adminSeesEveryPage(self) -> None:
        """
        A signed-in administrator gets every page.
        """
        fixture = AdminFixture(self)
        browser = fixture.signedIn()
        for path in PAGES:
            self.assertEqual(browser.get(path).code, 200, path)

    def test_adminApi(self) -> None:
        """
        An administrator's token works on the API.
        """
        fixture = AdminFixture(self)
        token = fixture.apiToken()
        browser = fixture.browser()
        response = browser.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(response.code, 200)
        self.assertEqual([d["deviceId"] for d in json.loads(browser.lastBody)], ["cam-1"])

    def test_disabledAdminTokenRefused(self) -> None:
        """
        A disabled administrator's token is refused.
        """
        fixture = AdminFixture(self)
        fixture.store.addUser("second", "admin", fastHash(ADMIN_PASSWORD), "test")
        token = fixture.apiToken("second")
        fixture.store.setUserEnabled("second", False, "root")
        response = fixture.browser().get("/api/v1/devices",
                                         headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(response.code, 403)


class LoginTests(SynchronousTestCase):
    def test_cookieFlags(self) -> None:
        """
        The session cookie is Secure, HttpOnly, SameSite=Strict, host-only
        and lasts no longer than the maximum session age.
        """
        fixture = AdminFixture(self)
        browser = fixture.browser()
        response = browser.login("root", ADMIN_PASSWORD)
        [cookie] = [c for c in browser.setCookies(response)
                    if c.startswith("__Host-mrs_session=")]
        attributes = [a.strip() for a in cookie.split(";")[1:]]
        self.assertEqual(attributes,
                         ["Path=/", "Max-Age=43200", "Secure", "HttpOnly", "SameSite=strict"])
        value = cookie.split(";")[0].split("=", 1)[1]
        self.assertGreaterEqual(len(value), 43)

    def test_sessionStoredAsDigest(self) -> None:
        """
        The server keeps only the digest of a session id.
        """
        fixture = AdminFixture(self)
        browser = fixture.browser()
        response = browser.login("root", ADMIN_PASSWORD)
        [cookie] = [c for c in browser.setCookies(response)
                    if c.startswith("__Host-mrs_session=")]
        value = cookie.split(";")[0].split("=", 1)[1]
        keys = list(fixture.app.sessions._sessions)
        self.assertEqual(len(keys), 1)
        self.assertNotIn(value, keys)

    def test_wrongPassword(self) -> None:
        """
        A wrong password shows an error next to the password field and no
        session.
        """
        fixture = AdminFixture(self)
        browser = fixture.browser()
        response = browser.login("root", "wrong-password")
        self.assertEqual(response.code, 401)
        self.assertIn('<p class="message error" id="password-error">'
                      "The user name or password is not correct.</p>", browser.lastBody)
        self.assertIn('value="root"', browser.lastBody)
        self.assertNotIn("wrong-password", browser.lastBody)
        self.assertEqual(len(fixture.app.sessions), 0)

    def test_unknownUser(self) -> None:
        """
        An unknown user name gets the same response as a wrong password.
        """
        fixture = AdminFixture(self)
        browser = fixture.browser()
        response = browser.login("nobody", "whatever-password")
        self.assertEqual(response.code, 401)
        self.assertIn("The user name or password is not correct.", browser.lastBody)

    def test_loginNeedsFormToken(self) -> None:
        """
        A login post without the token of the login form is rejected.
        """
        fixture = AdminFixture(self)
        browser = fixture.browser()
        response = browser.post("/admin/login",
                                {"username": "root", "password": ADMIN_PASSWORD}, csrf=False)
        self.assertEqual(response.code, 403)
        self.assertEqual(len(fixture.app.sessions), 0)

    def test_loginReturnsToPage(self) -> None:
        """
        After sign-in the browser goes back to the page it asked for; a
        target outside the admin site is ignored.
        """
        fixture = AdminFixture(self)
        browser = fixture.browser()
        browser.get("/admin/login?next=/admin/devices")
        response = browser.post("/admin/login?next=/admin/devices",
                                {"username": "root", "password": ADMIN_PASSWORD})
        self.assertEqual(response.headers.getRawHeaders("location"), ["/admin/devices"])
        browser = fixture.browser()
        browser.get("/admin/login")
        response = browser.post("/admin/login?next=//evil.example/admin",
                                {"username": "root", "password": ADMIN_PASSWORD})
        self.assertEqual(response.headers.getRawHeaders("location"), ["/admin"])

    def test_logout(self) -> None:
        """
        Signing out ends the session.
        """
        fixture = AdminFixture(self)
        browser = fixture.signedIn()
        browser.get("/admin")
        response = browser.post("/admin/logout")
        self.assertEqual(response.code, 303)
        self.assertEqual(len(fixture.app.sessions), 0)
        self.assertEqual(browser.get("/admin").code, 303)

    def test_logoutNeedsCsrf(self) -> None:
        """
        A sign-out without the CSRF token is rejected, so another site
        cannot sign the administrator out.
        """
        fixture = AdminFixture(self)
        browser = fixture.signedIn()
        response = browser.post("/admin/logout", csrf=False)
        self.assertEqual(response.code, 403)
        self.assertEqual(len(fixture.app.sessions), 1)

    def test_loginsCounted(self) -> None:
        """
        Admin sign-ins are counted in the metrics by result.
        """
        fixture = AdminFixture(self)
        fixture.browser().login("root", "wrong-password")
        fixture.signedIn()
        registry = fixture.metrics.registry
        self.assertEqual(
            registry.get_sample_value("mrs_logins_total", {"role": "admin", "result": "ok"}), 1)
        self.assertEqual(
            registry.get_sample_value("mrs_logins_total", {"role": "admin", "result": "failed"}),
            1)


class CsrfTests(SynchronousTestCase):
    def test_missingToken(self) -> None:
        """
        Every form posted without the CSRF token is rejected with 403 and
        changes nothing.
        """
        fixture = AdminFixture(self)
        browser = fixture.signedIn()
        browser.get("/admin")
        before = fixture.audit()
        for path, data in FORMS:
            response = browser.post(path, data, csrf=False)
            self.assertEqual(response.code, 403, path)
            self.assertIn("security token is missing or out of date", browser.lastBody)
        self.assertEqual(fixture.audit(), before)
        self.assertEqual(fixture.permissions.refreshes, 0)

    def test_wrongToken(self) -> None:
        """
        A token from another session is rejected.
        """
        fixture = AdminFixture(self)
        other = fixture.signedIn()
        other.get("/admin")
        browser = fixture.signedIn()
        browser.get("/admin")
        self.assertNotEqual(other.csrf, browser.csrf)
        before = fixture.audit()
        for path, data in FORMS:
            response = browser.post(path, {**data, "csrf": other.csrf})
            self.assertEqual(response.code, 403, path)
        self.assertEqual(fixture.audit(), before)


class ThrottleTests(SynchronousTestCase):
    def test_accountThrottled(self) -> None:
        """
        After too many failures for one account even the right password is
        refused until the window has passed.
        """
        fixture = AdminFixture(self)
        for _ in range(ACCOUNT_FAILURE_LIMIT):
            self.assertEqual(fixture.browser().login("root", "wrong-password").code, 401)
        browser = fixture.browser()
        response = browser.login("root", ADMIN_PASSWORD)
        self.assertEqual(response.code, 429)
        self.assertIn("Too many failed sign-ins for this account or from this address; "
                      "try again in 15 minutes.", browser.lastBody)
        fixture.clock.advance(THROTTLE_WINDOW)
        self.assertEqual(fixture.browser().login("root", ADMIN_PASSWORD).code, 303)

    def test_accountLockIsPerAddress(self) -> None:
        """
        Failures for an account from one address do not lock that account
        for its owner at another address.
        """
        import mrs.admin.app

        fixture = AdminFixture(self)
        self.patch(mrs.admin.app, "_clientAddress", lambda request: "203.0.113.9")
        for _ in range(ACCOUNT_FAILURE_LIMIT):
            self.assertEqual(fixture.browser().login("root", "wrong-password").code, 401)
        self.assertEqual(fixture.browser().login("root", ADMIN_PASSWORD).code, 429)
        self.patch(mrs.admin.app, "_clientAddress", lambda request: "198.51.100.4")
        self.assertEqual(fixture.browser().login("root", ADMIN_PASSWORD).code, 303)

    def test_addressThrottled(self) -> None:
        """
        Failures spread over many accounts from one address throttle that
        address.
        """
        fixture = AdminFixture(self)
        for i in range(ADDRESS_FAILURE_LIMIT):
            fixture.browser().login(f"user{i}", "wrong-password")
        self.assertEqual(fixture.browser().login("root", ADMIN_PASSWORD).code, 429)

    def test_successResetsAccount(self) -> None:
        """
        A successful sign-in clears the account's earlier failures.
        """
        fixture = AdminFixture(self)
        for _ in range(ACCOUNT_FAILURE_LIMIT - 1):
            fixture.browser().login("root", "wrong-password")
        fixture.signedIn()
        for _ in range(ACCOUNT_FAILURE_LIMIT - 1):
            fixture.browser().login("root", "wrong-password")
        self.assertEqual(fixture.browser().login("root", ADMIN_PASSWORD).code, 303)


class ExpiryTests(SynchronousTestCase):
    def test_idleExpiry(self) -> None:
        """
        A session unused for the idle timeout ends.
        """
        fixture = AdminFixture(self, session_idle_timeout="600")
        browser = fixture.signedIn()
        fixture.clock.advance(599)
        self.assertEqual(browser.get("/admin").code, 200)
        fixture.clock.advance(600)
        response = browser.get("/admin/devices")
        self.assertEqual(response.code, 303)
        self.assertEqual(response.headers.getRawHeaders("location"),
                         ["/admin/login?next=/admin/devices"])

    def test_absoluteExpiry(self) -> None:
        """
        A session ends at its maximum age even when it stays in use.
        """
        fixture = AdminFixture(self, session_idle_timeout="600", session_max_age="3600")
        browser = fixture.signedIn()
        for _ in range(5):
            fixture.clock.advance(590)
            self.assertEqual(browser.get("/admin").code, 200)
        fixture.clock.advance(650)
        self.assertEqual(browser.get("/admin").code, 303)
        self.assertEqual(len(fixture.app.sessions), 0)

    def test_passwordChangeEndsOtherSessions(self) -> None:
        """
        A password changed elsewhere ends the session.
        """
        fixture = AdminFixture(self)
        browser = fixture.signedIn()
        fixture.store.setUserPassword("root", fastHash("another-password-1"), "cli")
        self.assertEqual(browser.get("/admin").code, 303)


class ForcedPasswordChangeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fixture = AdminFixture(self)
        self.fixture.store.addUser("first", "admin", fastHash("one-time-password"), "system",
                                   mustChangePassword=True)

    def test_redirectedToAccount(self) -> None:
        """
        With the one-time password, sign-in leads to the password page and
        every other page redirects there.
        """
        browser = self.fixture.browser()
        response = browser.login("first", "one-time-password")
        self.assertEqual(response.headers.getRawHeaders("location"), ["/admin/account"])
        for path in PAGES:
            if path == "/admin/account":
                continue
            response = browser.get(path)
            self.assertEqual(response.code, 303, path)
            self.assertEqual(response.headers.getRawHeaders("location"), ["/admin/account"])
        self.assertEqual(browser.get("/admin/account").code, 200)
        self.assertIn("You signed in with a one-time password.", browser.lastBody)

    def test_formsRefused(self) -> None:
        """
        With the one-time password, forms other than the password change
        are refused.
        """
        browser = self.fixture.browser()
        browser.login("first", "one-time-password")
        browser.get("/admin/account")
        response = browser.post("/admin/devices", {"deviceId": "cam-9"})
        self.assertEqual(response.code, 403)
        self.assertIsNone(self.successResultOf(self.fixture.store.getDevice("cam-9")))

    def test_changePassword(self) -> None:
        """
        After choosing a new password the site opens and the flag is gone.
        """
        browser = self.fixture.browser()
        browser.login("first", "one-time-password")
        browser.get("/admin/account")
        response = browser.post("/admin/account", {
            "current": "one-time-password", "new": "a-long-new-password",
            "repeat": "a-long-new-password",
        })
        self.assertEqual(response.code, 200)
        self.assertIn("Your password was changed.", browser.lastBody)
        user = self.successResultOf(self.fixture.store.getUser("first"))
        self.assertFalse(user.mustChangePassword)
        self.assertEqual(browser.get("/admin/devices").code, 200)
        self.assertEqual(self.fixture.audit()[0].actor, "first")

    def test_passwordErrors(self) -> None:
        """
        Each wrong input is named next to its field and no password is
        written back into the page.
        """
        browser = self.fixture.browser()
        browser.login("first", "one-time-password")
        browser.get("/admin/account")
        cases = [
            ({"current": "bad-guess", "new": "a-long-new-password",
              "repeat": "a-long-new-password"},
             "current", "This is not your current password."),
            ({"current": "one-time-password", "new": "short", "repeat": "short"},
             "new", "Use at least 12 characters"),
            ({"current": "one-time-password", "new": "one-time-password",
              "repeat": "one-time-password"},
             "new", "Choose a password different from the current one."),
            ({"current": "one-time-password", "new": "a-long-new-password",
              "repeat": "a-long-other-password"},
             "repeat", "The two new passwords differ; type the same one twice."),
        ]
        for data, field, message in cases:
            response = browser.post("/admin/account", data)
            self.assertEqual(response.code, 400)
            self.assertIn(f'<p class="message error" id="{field}-error">{message}',
                          browser.lastBody)
            for value in data.values():
                self.assertNotIn(f'value="{value}"', browser.lastBody)
        user = self.successResultOf(self.fixture.store.getUser("first"))
        self.assertTrue(user.mustChangePassword)


class ErrorPageTests(SynchronousTestCase):
    def test_unexpectedErrorHasId(self) -> None:
        """
        An unexpected exception gives a page with an error id and no
        traceback, and the log entry carries the same id.
        """
        events: list[dict[str, object]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        fixture = AdminFixture(self)
        browser = fixture.signedIn()
        fixture.store.listDevices = lambda: fail(RuntimeError("database on fire"))
        response = browser.get("/admin/devices")
        self.assertEqual(response.code, 500)
        self.assertNotIn("database on fire", browser.lastBody)
        self.assertNotIn("Traceback", browser.lastBody)
        [logged] = [e for e in events if "errorId" in e]
        self.assertIn(f"(error id {logged['errorId']})", browser.lastBody)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_siteHidesTracebacks(self) -> None:
        """
        The site made for the listener never shows tracebacks.
        """
        fixture = AdminFixture(self)
        self.assertFalse(fixture.app.site().displayTracebacks)


class BodyLimitTests(SynchronousTestCase):
    def test_largeBodyRejected(self) -> None:
        """
        A body over the limit is not stored or routed; the response is 413.
        """
        from twisted.web.test.requesthelper import DummyChannel

        from mrs.admin.app import LimitedRequest
        from mrs.admin.base import MAX_BODY

        fixture = AdminFixture(self)
        site = fixture.app.site()
        channel = DummyChannel()
        channel.site = site
        request = site.requestFactory(channel)
        self.assertIsInstance(request, LimitedRequest)
        request.gotLength(None)
        for _ in range(MAX_BODY // 65536 + 2):
            request.handleContentChunk(b"x" * 65536)
        request.requestHeaders.setRawHeaders(b"content-type",
                                             [b"application/x-www-form-urlencoded"])
        request.requestReceived(b"POST", b"/admin/login", b"HTTP/1.1")
        written = channel.transport.written.getvalue()
        self.assertTrue(written.startswith(b"HTTP/1.1 413 "), written[:100])
        self.assertIn(b"The request body is larger than 1048576 bytes", written)
        self.assertEqual(request.args, {})
