"""
Tests for what the admin pages do: accounts, groups, rules, the Server
Authentication page, settings, the audit log, the dashboard and
C{/metrics}, without sockets.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from mrs.store.models import Schedule
from tests.fakes_admin import ADMIN_PASSWORD, AdminFixture
from tests.support import fastHash
from tests.test_tls_support import fingerprintOf, selfSignedPair


def secretShown(body: str) -> str:
    match = re.search(r'<code class="secret">([^<]+)</code>', body)
    assert match is not None, body
    return match.group(1)


class LogCapture:
    """
    Collect every log event as text while a test runs.
    """

    def __init__(self, testCase: SynchronousTestCase) -> None:
        self.events: list[dict[str, object]] = []
        globalLogPublisher.addObserver(self.events.append)
        testCase.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def text(self) -> str:
        return "\n".join(
            f"{formatEvent(e)} {sorted((k, repr(v)) for k, v in e.items() if k != 'log_logger')}"
            for e in self.events
        )


class DevicePageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fixture = AdminFixture(self)
        self.browser = self.fixture.signedIn()
        self.browser.get("/admin/devices")

    def test_addShowsSecretOnce(self) -> None:
        """
        Adding a device shows its secret once; the stored hash verifies
        it, and the device page does not show it again.
        """
        response = self.browser.post("/admin/devices",
                                     {"deviceId": "cam-2", "displayName": "Gate"})
        self.assertEqual(response.code, 200)
        secret = secretShown(self.browser.lastBody)
        device = self.successResultOf(self.fixture.store.getDevice("cam-2"))
        self.assertEqual(device.displayName, "Gate")
        self.assertTrue(self.successResultOf(
            self.fixture.app.passwords.verify(device.secretHash, secret)))
        self.browser.get("/admin/devices/cam-2")
        self.assertNotIn(secret, self.browser.lastBody)
        self.browser.get("/admin/devices")
        self.assertNotIn(secret, self.browser.lastBody)
        entry = self.fixture.audit()[0]
        self.assertEqual((entry.actor, entry.action, entry.object),
                         ("root", "device.add", "device:cam-2"))
        self.assertEqual(self.fixture.permissions.refreshes, 1)

    def test_addDuplicate(self) -> None:
        """
        An existing device id is named next to the id field.
        """
        response = self.browser.post("/admin/devices", {"deviceId": "cam-1"})
        self.assertEqual(response.code, 400)
        self.assertIn('<p class="message error" id="add-deviceId-error">'
                      "device &#39;cam-1&#39; already exists", self.browser.lastBody)

    def test_addInvalidName(self) -> None:
        """
        An invalid device id is explained next to the field, escaped.
        """
        response = self.browser.post("/admin/devices", {"deviceId": "<b>x"})
        self.assertEqual(response.code, 400)
        self.assertIn("invalid device &#39;&lt;b&gt;x&#39;: use 1 to 64 characters",
                      self.browser.lastBody)
        self.assertNotIn("<b>x", self.browser.lastBody)

    def test_search(self) -> None:
        """
        The search box filters by id and display name.
        """
        self.fixture.store.addDevice("door-7", "Back door", fastHash("x"), "test")
        self.browser.get("/admin/devices?q=door")
        self.assertIn("door-7", self.browser.lastBody)
        self.assertNotIn("cam-1", self.browser.lastBody.split('id="devices"')[1])

    def test_editDisableResetRemove(self) -> None:
        """
        A device can be renamed, disabled, given a new secret and removed.
        """
        self.browser.get("/admin/devices/cam-1")
        self.browser.post("/admin/devices/cam-1",
                          {"displayName": "Front", "allowPlaintext": "on"})
        device = self.successResultOf(self.fixture.store.getDevice("cam-1"))
        self.assertEqual((device.displayName, device.allowPlaintext), ("Front", True))
        self.browser.post("/admin/devices/cam-1/enabled", {"enabled": "off"})
        device = self.successResultOf(self.fixture.store.getDevice("cam-1"))
        self.assertFalse(device.enabled)
        self.browser.post("/admin/devices/cam-1/secret")
        secret = secretShown(self.browser.lastBody)
        device = self.successResultOf(self.fixture.store.getDevice("cam-1"))
        self.assertTrue(self.successResultOf(
            self.fixture.app.passwords.verify(device.secretHash, secret)))
        self.browser.post("/admin/devices/cam-1/remove")
        self.assertIsNone(self.successResultOf(self.fixture.store.getDevice("cam-1")))
        actions = [e.action for e in self.fixture.audit() if e.actor == "root"]
        self.assertEqual(actions, ["device.remove", "device.secret", "device.disable",
                                   "device.update"])

    def test_missingDevice(self) -> None:
        """
        A removed device's page is a 404.
        """
        response = self.browser.get("/admin/devices/cam-404")
        self.assertEqual(response.code, 404)
        self.assertIn("There is no device &#39;cam-404&#39;", self.browser.lastBody)


class UserPageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fixture = AdminFixture(self)
        self.browser = self.fixture.signedIn()
        self.browser.get("/admin/users")

    def test_addUserWithOneTimePassword(self) -> None:
        """
        A new user gets a one-time password shown once, which must be
        changed at first sign-in.
        """
        self.browser.post("/admin/users", {"name": "carol", "role": "admin"})
        password = secretShown(self.browser.lastBody)
        user = self.successResultOf(self.fixture.store.getUser("carol"))
        self.assertEqual((user.role, user.mustChangePassword), ("admin", True))
        carol = self.fixture.browser()
        response = carol.login("carol", password)
        self.assertEqual(response.headers.getRawHeaders("location"), ["/admin/account"])

    def test_unknownRole(self) -> None:
        """
        An unknown role is named next to the role field.
        """
        response = self.browser.post("/admin/users", {"name": "carol", "role": "boss"})
        self.assertEqual(response.code, 400)
        self.assertIn('id="add-role-error">Choose one of: admin, operator.',
                      self.browser.lastBody)

    def test_resetPassword(self) -> None:
        """
        Resetting a password shows a new one-time password once.
        """
        self.browser.get("/admin/users/alice")
        self.browser.post("/admin/users/alice/password")
        password = secretShown(self.browser.lastBody)
        user = self.successResultOf(self.fixture.store.getUser("alice"))
        self.assertTrue(user.mustChangePassword)
        self.assertTrue(self.successResultOf(
            self.fixture.app.passwords.verify(user.passwordHash, password)))

    def test_roleAndState(self) -> None:
        """
        A user's role and state can be changed.
        """
        self.browser.get("/admin/users/alice")
        self.browser.post("/admin/users/alice", {"role": "admin"})
        self.browser.post("/admin/users/alice/enabled", {"enabled": "off"})
        user = self.successResultOf(self.fixture.store.getUser("alice"))
        self.assertEqual((user.role, user.enabled), ("admin", False))

    def test_cannotLockOutSelf(self) -> None:
        """
        An administrator cannot disable, demote or remove their own account.
        """
        self.browser.get("/admin/users/root")
        for path, data in (("/admin/users/root/enabled", {"enabled": "off"}),
                           ("/admin/users/root", {"role": "operator"}),
                           ("/admin/users/root/remove", {})):
            response = self.browser.post(path, data)
            self.assertEqual(response.code, 409, path)
        user = self.successResultOf(self.fixture.store.getUser("root"))
        self.assertEqual((user.role, user.enabled), ("admin", True))

    def test_removeEndsSessions(self) -> None:
        """
        Removing an administrator ends their sessions.
        """
        self.fixture.store.addUser("second", "admin", fastHash(ADMIN_PASSWORD), "test")
        second = self.fixture.signedIn("second")
        self.browser.get("/admin/users/second")
        self.browser.post("/admin/users/second/remove")
        self.assertIsNone(self.successResultOf(self.fixture.store.getUser("second")))
        self.assertEqual(second.get("/admin").code, 303)

    def test_apiTokenLifecycle(self) -> None:
        """
        A token created on the user page is shown once, works on the API,
        and stops working when revoked.
        """
        self.browser.get("/admin/users/root")
        self.browser.post("/admin/users/root/tokens", {"label": "backup script"})
        token = secretShown(self.browser.lastBody)
        self.assertIn("backup script", self.browser.lastBody)
        [record] = self.successResultOf(self.fixture.store.listApiTokens("root"))
        self.assertNotEqual(record.tokenHash, token)
        api = self.fixture.browser()
        headers = {"Authorization": f"Bearer {token}"}
        self.assertEqual(api.get("/api/v1/users", headers=headers).code, 200)
        self.browser.get("/admin/users/root")
        self.assertNotIn(token, self.browser.lastBody)
        self.browser.post(f"/admin/users/root/tokens/{record.tokenId}/remove")
        self.assertEqual(api.get("/api/v1/users", headers=headers).code, 401)

    def test_operatorHasNoTokenForm(self) -> None:
        """
        An operator's page offers no API token, and a forged form is refused.
        """
        self.browser.get("/admin/users/alice")
        self.assertNotIn("Create API token", self.browser.lastBody)
        response = self.browser.post("/admin/users/alice/tokens", {"label": "x"})
        self.assertEqual(response.code, 400)
        self.assertEqual(self.successResultOf(self.fixture.store.listApiTokens("alice")), [])


class GroupAndRuleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fixture = AdminFixture(self)
        self.browser = self.fixture.signedIn()
        self.browser.get("/admin")

    def test_groups(self) -> None:
        """
        Groups of both kinds can be made, filled, emptied and removed.
        """
        self.browser.post("/admin/groups/device", {"name": "gates"})
        self.browser.post("/admin/groups/device/gates/members", {"member": "cam-1"})
        [group] = self.successResultOf(self.fixture.store.listGroups("device"))
        self.assertEqual(group.members, ("cam-1",))
        self.browser.post("/admin/groups/device/gates/members/cam-1/remove")
        [group] = self.successResultOf(self.fixture.store.listGroups("device"))
        self.assertEqual(group.members, ())
        self.browser.post("/admin/groups/user", {"name": "crew"})
        self.browser.post("/admin/groups/user/crew/remove")
        self.assertEqual(self.successResultOf(self.fixture.store.listGroups("user")), [])

    def test_unknownGroupKind(self) -> None:
        """
        Only user and device groups exist.
        """
        self.assertEqual(self.browser.get("/admin/groups/planet").code, 404)

    def test_addRuleWithSchedule(self) -> None:
        """
        A rule with rights and a schedule is stored as entered.
        """
        response = self.browser.post("/admin/permissions", {
            "subjectKind": "user", "subject": "alice", "targetKind": "device",
            "target": "cam-1", "rights": ["video", "location"], "days": ["Mon", "Fri"],
            "start": "08:00", "end": "17:30",
        })
        self.assertEqual(response.code, 200, self.browser.lastBody)
        [rule] = self.successResultOf(self.fixture.store.listRules())
        self.assertEqual(rule.rights, frozenset({"video", "location"}))
        self.assertEqual(rule.schedule, Schedule(frozenset({0, 4}), 8 * 60, 17 * 60 + 30))
        self.assertIn("Mon, Fri 08:00-17:30", self.browser.lastBody)

    def test_ruleErrors(self) -> None:
        """
        A rule without rights, with a bad time or an unknown user shows the
        error next to the field and is not stored.
        """
        base = {"subjectKind": "user", "subject": "alice", "targetKind": "device",
                "target": "cam-1"}
        cases = [
            ({}, "rule-rights-error", "Tick at least one right."),
            ({"rights": "video", "start": "25:00"}, "rule-start-error",
             "invalid start time &#39;25:00&#39;: use a time from 00:00 to 24:00"),
            ({"rights": "video", "subject": "nobody"}, "rule-subject-error",
             "user &#39;nobody&#39; not found"),
        ]
        for extra, elementId, message in cases:
            response = self.browser.post("/admin/permissions", {**base, **extra})
            self.assertEqual(response.code, 400)
            self.assertIn(f'id="{elementId}">{message}', self.browser.lastBody)
        self.assertEqual(self.successResultOf(self.fixture.store.listRules()), [])

    def test_explainAndRemove(self) -> None:
        """
        The explanation names the rule behind each right; removing the rule
        takes the rights away.
        """
        self.fixture.store.addRule("user", "alice", "device", "cam-1", ["audio", "video"],
                                   "test")
        self.browser.get("/admin/permissions?user=alice&device=cam-1")
        explanation = self.browser.lastBody.split('id="explanation"')[1]
        self.assertIn("<td data-label=\"Right\">video</td>", explanation)
        self.assertIn("rule 1: alice on cam-1, always", explanation)
        self.browser.post("/admin/permissions/1/remove")
        self.assertEqual(self.successResultOf(self.fixture.store.listRules()), [])
        self.browser.get("/admin/permissions?user=alice&device=cam-1")
        self.assertIn("No rights: no rule grants this user anything on this device.",
                      self.browser.lastBody)

    def test_explainAdmin(self) -> None:
        """
        An administrator's rights come from the role.
        """
        self.browser.get("/admin/permissions?user=root&device=cam-1")
        self.assertIn("administrator role", self.browser.lastBody)

    def test_explainUnknown(self) -> None:
        """
        Unknown names in the explanation form are named next to the fields.
        """
        self.browser.get("/admin/permissions?user=ghost&device=cam-9")
        self.assertIn('id="explain-user-error">There is no user &#39;ghost&#39;.',
                      self.browser.lastBody)
        self.assertIn('id="explain-device-error">There is no device &#39;cam-9&#39;.',
                      self.browser.lastBody)


def _mismatchedPair() -> tuple[bytes, bytes]:
    keyPem, _ = selfSignedPair(("mrs.example.test", "127.0.0.1"))
    _, certPem = selfSignedPair(("mrs.example.test", "127.0.0.1"))
    return keyPem, certPem


def _signedCertificate(csrPem: bytes) -> tuple[bytes, bytes]:
    """
    Sign a CSR with a throwaway CA; return the certificate and CA PEM.
    """
    from cryptography.hazmat.primitives import serialization

    request = x509.load_pem_x509_csr(csrPem)
    caKey = ec.generate_private_key(ec.SECP256R1())
    caName = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder().subject_name(caName).issuer_name(caName)
        .public_key(caKey.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=800))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(caKey, hashes.SHA256())
    )
    builder = (
        x509.CertificateBuilder().subject_name(request.subject).issuer_name(caName)
        .public_key(request.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    for extension in request.extensions:
        if isinstance(extension.value, x509.BasicConstraints):
            continue
        builder = builder.add_extension(extension.value, extension.critical)
    leaf = builder.sign(caKey, hashes.SHA256())
    return (leaf.public_bytes(serialization.Encoding.PEM),
            ca.public_bytes(serialization.Encoding.PEM))


class ServerAuthenticationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fixture = AdminFixture(self)
        self.browser = self.fixture.signedIn()
        self.browser.get("/admin/server-authentication")
        self.logs = LogCapture(self)

    def currentFingerprint(self) -> str:
        return str(self.fixture.tls.current.info.sha256)

    def test_showsCurrentCertificate(self) -> None:
        """
        The page shows the served certificate's names and fingerprint, and
        the download is the served PEM.
        """
        self.assertIn(self.currentFingerprint(), self.browser.lastBody)
        self.assertIn("DNS:mrs.example.test", self.browser.lastBody)
        response = self.browser.get("/admin/server-authentication/certificate.pem")
        self.assertEqual(response.headers.getRawHeaders("content-type"),
                         ["application/x-pem-file"])
        self.assertEqual(self.browser.lastBody.encode(),
                         self.fixture.tls.current.certificatePem)

    def test_installPastedPair(self) -> None:
        """
        A valid pasted pair is installed and served at once, and audited
        with the administrator's name.
        """
        keyPem, certPem = selfSignedPair()
        response = self.browser.post("/admin/server-authentication/install", {
            "key": keyPem.decode(), "certificate": certPem.decode(),
        })
        self.assertEqual(response.code, 200)
        self.assertIn("The new key and certificate are installed", self.browser.lastBody)
        self.assertEqual(self.currentFingerprint(), fingerprintOf(certPem))
        self.assertIn(fingerprintOf(certPem), self.browser.lastBody)
        self.assertIn("self-signed", self.browser.lastBody)
        self.assertNotIn(keyPem.decode().splitlines()[1], self.browser.lastBody)
        entry = self.fixture.audit()[0]
        self.assertEqual((entry.actor, entry.action), ("root", "tls.install"))

    def test_mismatchedPairRejected(self) -> None:
        """
        A key that does not match the certificate is rejected with the
        error next to the key box.  The key is not echoed and the old
        certificate stays.
        """
        before = self.currentFingerprint()
        keyPem, certPem = _mismatchedPair()
        response = self.browser.post("/admin/server-authentication/install", {
            "key": keyPem.decode(), "certificate": certPem.decode(),
        })
        self.assertEqual(response.code, 400)
        body = self.browser.lastBody
        self.assertIn("The pair was not installed; the current certificate stays in use.", body)
        self.assertRegex(body, r'<p class="message error" id="pair-key-error">Error: [^<]+</p>')
        self.assertNotIn(keyPem.decode().splitlines()[1], body)
        self.assertNotIn("PRIVATE KEY-----\n", body)
        self.assertIn("paste or upload it again", body)
        self.assertIn(certPem.decode().splitlines()[1], body)
        self.assertEqual(self.currentFingerprint(), before)
        self.assertNotIn(keyPem.decode().splitlines()[1], self.logs.text())

    def test_keyInCertificateBoxNotEchoed(self) -> None:
        """
        A private key pasted into the Certificate box (the boxes swapped) is
        rejected, and neither box shows it again.
        """
        keyPem, certPem = selfSignedPair()
        response = self.browser.post("/admin/server-authentication/install", {
            "key": certPem.decode(), "certificate": keyPem.decode(),
        })
        self.assertEqual(response.code, 400)
        body = self.browser.lastBody
        self.assertNotIn(keyPem.decode().splitlines()[1], body)
        self.assertNotIn("-----BEGIN PRIVATE KEY-----\n", body)

    def test_checkOnly(self) -> None:
        """
        "Check only" reports on a pair without installing it.
        """
        before = self.currentFingerprint()
        keyPem, certPem = selfSignedPair()
        response = self.browser.post("/admin/server-authentication/install", {
            "key": keyPem.decode(), "certificate": certPem.decode(), "action": "check",
        })
        self.assertEqual(response.code, 200)
        self.assertIn("The pair passed the checks; nothing was installed yet.",
                      self.browser.lastBody)
        self.assertIn(fingerprintOf(certPem), self.browser.lastBody)
        self.assertEqual(self.currentFingerprint(), before)

    def test_missingCertificate(self) -> None:
        """
        An empty certificate box gets its error next to it.
        """
        keyPem, _ = selfSignedPair()
        response = self.browser.post("/admin/server-authentication/install",
                                     {"key": keyPem.decode(), "certificate": ""})
        self.assertEqual(response.code, 400)
        self.assertIn('id="pair-certificate-error">Error:', self.browser.lastBody)

    def test_generateSelfSigned(self) -> None:
        """
        Generating a self-signed certificate installs it at once.
        """
        before = self.currentFingerprint()
        response = self.browser.post("/admin/server-authentication/generate",
                                     {"keyType": "ec-p256", "mode": "self-signed"})
        self.assertEqual(response.code, 200)
        self.assertNotEqual(self.currentFingerprint(), before)
        self.assertIn(self.currentFingerprint(), self.browser.lastBody)

    def test_csrAndSignedCertificate(self) -> None:
        """
        A CSR is shown and downloadable; its signed certificate pasted back
        is installed with the key that stayed on the server.
        """
        before = self.currentFingerprint()
        self.browser.post("/admin/server-authentication/generate",
                          {"keyType": "ec-p256", "mode": "csr", "organization": "Example"})
        self.assertIn("-----BEGIN CERTIFICATE REQUEST-----", self.browser.lastBody)
        self.assertEqual(self.currentFingerprint(), before)
        response = self.browser.get("/admin/server-authentication/request.csr")
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/pkcs10"])
        csrPem = self.browser.lastBody.encode()
        self.assertIn("O=Example", x509.load_pem_x509_csr(csrPem).subject.rfc4514_string())
        certPem, caPem = _signedCertificate(csrPem)
        self.browser.get("/admin/server-authentication")
        response = self.browser.post("/admin/server-authentication/signed",
                                     {"signed": certPem.decode(), "signedChain": caPem.decode()})
        self.assertEqual(response.code, 200, self.browser.lastBody)
        self.assertEqual(self.currentFingerprint(), fingerprintOf(certPem))

    def test_signedCertificateMismatch(self) -> None:
        """
        A certificate that does not belong to the pending key is rejected.
        """
        self.browser.post("/admin/server-authentication/generate",
                          {"keyType": "ec-p256", "mode": "csr"})
        before = self.currentFingerprint()
        _, otherCert = selfSignedPair()
        response = self.browser.post("/admin/server-authentication/signed",
                                     {"signed": otherCert.decode()})
        self.assertEqual(response.code, 400)
        self.assertIn('id="signed-signed-error">Error:', self.browser.lastBody)
        self.assertEqual(self.currentFingerprint(), before)

    def test_passphraseNotEchoed(self) -> None:
        """
        A passphrase is never written back into the page.
        """
        keyPem, certPem = _mismatchedPair()
        self.browser.post("/admin/server-authentication/install", {
            "key": keyPem.decode(), "certificate": certPem.decode(),
            "passphrase": "secret-passphrase-77",
        })
        self.assertNotIn("secret-passphrase-77", self.browser.lastBody)
        self.assertNotIn("secret-passphrase-77", self.logs.text())


class SettingsAndAuditTests(SynchronousTestCase):
    def test_settingsPage(self) -> None:
        """
        The settings page lists every setting and which ones need a restart.
        """
        fixture = AdminFixture(self, metrics_token="do-not-show-me")  # noqa: S106
        browser = fixture.signedIn()
        browser.get("/admin/settings")
        body = browser.lastBody
        self.assertIn("<code>client_port</code>", body)
        self.assertIn("after a restart", body)
        self.assertIn("tcp:12650", body)
        self.assertNotIn("do-not-show-me", body)
        self.assertNotIn("The minimum TLS version is", body)

    def test_oldTlsWarning(self) -> None:
        """
        A minimum TLS version below 1.2 is warned about.
        """
        fixture = AdminFixture(self, min_tls_version="1.0")
        browser = fixture.signedIn()
        browser.get("/admin/settings")
        self.assertIn(str(fixture.tls.minVersionWarning), browser.lastBody)

    def test_changeLiveSetting(self) -> None:
        """
        A setting that applies at once is validated and stored.
        """
        fixture = AdminFixture(self)
        browser = fixture.signedIn()
        browser.get("/admin/settings")
        response = browser.post("/admin/settings/time_zone", {"time_zone": "Mars/Base"})
        self.assertEqual(response.code, 400)
        self.assertIn("expected an IANA time zone name", browser.lastBody)
        browser.post("/admin/settings/time_zone", {"time_zone": "Europe/Ljubljana"})
        self.assertEqual(self.successResultOf(fixture.store.getSetting("config.time_zone")),
                         "Europe/Ljubljana")
        response = browser.post("/admin/settings/client_port", {"client_port": "1"})
        self.assertEqual(response.code, 404)

    def test_auditFilter(self) -> None:
        """
        The audit log filters by actor, action prefix and object.
        """
        fixture = AdminFixture(self)
        fixture.store.addDevice("cam-2", "Two", fastHash("x"), "root")
        browser = fixture.signedIn()
        browser.get("/admin/audit?actor=root&action=device.&object=cam-2")
        table = browser.lastBody.split('id="audit"')[1]
        self.assertIn("device:cam-2", table)
        self.assertNotIn("cam-1", table)
        browser.get("/admin/audit?actor=nobody")
        self.assertIn("No audit entries match.", browser.lastBody)


class DashboardTests(SynchronousTestCase):
    ENTRY = {
        "role": "device", "name": "cam-1", "address": "192.0.2.7:40000",
        "encrypted": True, "tlsVersion": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256",
        "since": 0.0, "bitrateIn": {"video": 2_500_000, "audio": 64_000}, "bitrateOut": {},
        "subscribers": 2, "lastLocation": {"lat": 46.05, "lon": 14.5},
        "lastLocationTime": 0.0,
    }

    def test_dashboardRows(self) -> None:
        """
        The dashboard lists connected clients with link, rates and location.
        """
        fixture = AdminFixture(self)
        now = fixture.clock.seconds()
        fixture.hub.entries.append({**self.ENTRY, "since": now - 125,
                                    "lastLocationTime": now - 3})
        browser = fixture.signedIn()
        browser.get("/admin")
        body = browser.lastBody
        self.assertIn('<td data-label="Name">cam-1</td>', body)
        self.assertIn("TLSv1.3 TLS_AES_128_GCM_SHA256", body)
        self.assertIn("video 2.5 Mbit/s, audio 64 kbit/s", body)
        self.assertIn("46.05000, 14.50000 (3s ago)", body)
        self.assertIn('<dd id="devices-online">1</dd>', body)
        self.assertIn('<noscript><meta http-equiv="refresh" content="15"></noscript>', body)

    def test_eventStream(self) -> None:
        """
        The event stream sends the status at once and then every interval,
        and ends when the session expires without being kept alive by it.
        """
        fixture = AdminFixture(self, session_idle_timeout="10")
        fixture.hub.entries.append(self.ENTRY)
        browser = fixture.signedIn()
        chunks: list[bytes] = []
        d = browser.stub.request("GET", "https://mrs.example.test/admin/events",
                                 unbuffered=True)
        browser.stub.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/event-stream"])
        done = response.collect(chunks.append)
        browser.stub.flush()
        self.assertEqual(len(chunks), 1)
        self.assertTrue(chunks[0].startswith(b"event: status\ndata: "))
        status = json.loads(chunks[0].split(b"data: ", 1)[1])
        self.assertEqual(status["sessions"][0]["name"], "cam-1")
        fixture.clock.advance(2)
        browser.stub.flush()
        self.assertEqual(len(chunks), 2)
        fixture.clock.advance(8)
        browser.stub.flush()
        self.assertEqual(chunks[-1], b"event: ended\ndata: {}\n\n")
        self.successResultOf(done)
        self.assertEqual(len(fixture.clock.getDelayedCalls()), 2)


class MetricsEndpointTests(SynchronousTestCase):
    def test_localAddressAllowed(self) -> None:
        """
        A request from an allowed address reads the metrics without a token.
        """
        fixture = AdminFixture(self, metrics_addresses="127.0.0.1")
        fixture.metrics.connectionOpened("device", True)
        browser = fixture.browser()
        response = browser.get("/metrics")
        self.assertEqual(response.code, 200)
        self.assertIn('mrs_connections{encrypted="yes",role="device"} 1.0', browser.lastBody)
        self.assertIn("mrs_certificate_days_to_expiry", browser.lastBody)

    def test_otherAddressNeedsToken(self) -> None:
        """
        Other addresses need the bearer token.
        """
        fixture = AdminFixture(self, metrics_addresses="10.0.0.0/8",
                               metrics_token="metrics-token-1")  # noqa: S106
        browser = fixture.browser()
        self.assertEqual(browser.get("/metrics").code, 401)
        self.assertEqual(
            browser.get("/metrics", headers={"Authorization": "Bearer wrong"}).code, 401)
        response = browser.get("/metrics",
                               headers={"Authorization": "Bearer metrics-token-1"})
        self.assertEqual(response.code, 200)


class NoSecretsTests(SynchronousTestCase):
    def test_noSecretsInLogs(self) -> None:
        """
        Passwords, device secrets, API tokens and private keys never reach
        the log, through a whole session of changes.
        """
        logs = LogCapture(self)
        fixture = AdminFixture(self)
        browser = fixture.browser()
        browser.login("root", "wrong-password-for-log")
        browser = fixture.signedIn()
        browser.get("/admin")
        shown = []
        browser.post("/admin/devices", {"deviceId": "cam-2"})
        shown.append(secretShown(browser.lastBody))
        browser.post("/admin/users", {"name": "carol", "role": "admin"})
        shown.append(secretShown(browser.lastBody))
        browser.post("/admin/users/root/tokens", {"label": "t"})
        shown.append(secretShown(browser.lastBody))
        keyPem, certPem = selfSignedPair()
        browser.post("/admin/server-authentication/install",
                     {"key": keyPem.decode(), "certificate": certPem.decode()})
        text = logs.text()
        self.assertIn("signed in", text)
        for secret in [ADMIN_PASSWORD, "wrong-password-for-log", *shown,
                       keyPem.decode().splitlines()[1]]:
            self.assertNotIn(secret, text)
        self.assertNotIn("BEGIN PRIVATE KEY", text)


class HubFormatTests(SynchronousTestCase):
    def test_hubEntries(self) -> None:
        """
        The dashboard reads the hub's per-track rates, location age and a
        monitor's subscriptions.
        """
        fixture = AdminFixture(self)
        now = fixture.clock.seconds()
        fixture.hub.entries += [
            {"role": "device", "name": "cam-1", "since": now - 10, "encrypted": False,
             "address": "192.0.2.9", "subscribers": 1,
             "tracks": {"video": {"bitrateIn": 800_000, "bytesIn": 5}},
             "lastLocation": {"lat": 1.0, "lon": 2.0, "time": "x"}, "lastLocationAge": 7.4},
            {"role": "monitor", "name": "alice", "since": now - 5, "encrypted": True,
             "tlsVersion": "TLSv1.2", "cipher": "ECDHE-RSA-AES128-GCM-SHA256",
             "subscriptions": {"cam-1": ["video"]}, "droppedFrames": 4},
        ]
        browser = fixture.signedIn()
        browser.get("/admin")
        body = browser.lastBody
        self.assertIn('<td data-label="Bitrate in">video 800 kbit/s</td>', body)
        self.assertIn("1.00000, 2.00000 (7s ago)", body)
        self.assertIn('<span class="warn">plaintext</span>', body)
        self.assertIn('<td data-label="Watchers">watches cam-1 (4 frames dropped)</td>', body)


class EventStreamAccountTests(SynchronousTestCase):
    def test_disabledAccountEndsStream(self) -> None:
        """
        The event stream ends at the next interval once the account is
        disabled.
        """
        fixture = AdminFixture(self)
        fixture.store.addUser("second", "admin", fastHash(ADMIN_PASSWORD), "test")
        browser = fixture.signedIn("second")
        chunks: list[bytes] = []
        d = browser.stub.request("GET", "https://mrs.example.test/admin/events",
                                 unbuffered=True)
        browser.stub.flush()
        done = self.successResultOf(d).collect(chunks.append)
        browser.stub.flush()
        self.assertEqual(len(chunks), 1)
        fixture.store.setUserEnabled("second", False, "root")
        fixture.clock.advance(2)
        browser.stub.flush()
        self.assertEqual(chunks[-1], b"event: ended\ndata: {}\n\n")
        self.successResultOf(done)
