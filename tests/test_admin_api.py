"""
Tests for the JSON API under C{/api/v1}: its operations without sockets,
and its OpenAPI document checked by schemathesis against a live HTTPS
listener.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from mrs.admin.openapi import openApiDocument
from mrs.admin.sessions import digest
from tests.fakes_admin import AdminFixture, ListeningAdmin
from tests.test_tls_support import fingerprintOf, selfSignedPair


class ApiClient:
    def __init__(self, testCase: SynchronousTestCase, fixture: AdminFixture) -> None:
        self.testCase = testCase
        self.browser = fixture.browser()
        self.headers = {"Authorization": f"Bearer {fixture.apiToken()}"}

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        response = self.browser.request(method, "/api/v1" + path, headers=headers, body=data)
        text = self.browser.lastBody
        return response.code, json.loads(text) if text else None


class ApiTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.fixture = AdminFixture(self)
        self.api = ApiClient(self, self.fixture)

    def test_openApiDocument(self) -> None:
        """
        The OpenAPI document is served without a token and lists the routes.
        """
        browser = self.fixture.browser()
        response = browser.get("/api/v1/openapi.json")
        self.assertEqual(response.code, 200)
        document = json.loads(browser.lastBody)
        self.assertEqual(document, json.loads(json.dumps(openApiDocument())))
        self.assertEqual(document["openapi"], "3.0.3")
        self.assertIn("/devices/{deviceId}", document["paths"])

    def test_userWithChosenPassword(self) -> None:
        """
        A user added with a password gets it (not echoed back); a password
        under 12 characters is rejected instead of being ignored.
        """
        code, body = self.api.call("POST", "/users", {"name": "dave", "password": "short"})
        self.assertEqual(code, 400)
        self.assertIn("The field 'password' is invalid: the password is too short", body["error"])
        code, body = self.api.call("POST", "/users",
                                   {"name": "dave", "password": "a-long-enough-password"})
        self.assertEqual(code, 201)
        self.assertNotIn("password", body)
        self.assertEqual(body["user"]["mustChangePassword"], False)

    def test_devices(self) -> None:
        """
        Devices can be added (secret shown once), changed and removed.
        """
        code, body = self.api.call("POST", "/devices", {"deviceId": "cam-2",
                                                        "displayName": "Gate"})
        self.assertEqual(code, 201)
        self.assertEqual(body["device"]["displayName"], "Gate")
        device = self.successResultOf(self.fixture.store.getDevice("cam-2"))
        self.assertTrue(self.successResultOf(
            self.fixture.app.passwords.verify(device.secretHash, body["secret"])))
        code, body = self.api.call("PATCH", "/devices/cam-2",
                                   {"enabled": False, "allowPlaintext": True})
        self.assertEqual((code, body["enabled"], body["allowPlaintext"]), (200, False, True))
        code, body = self.api.call("GET", "/devices?q=gate")
        self.assertEqual([d["deviceId"] for d in body], ["cam-2"])
        code, body = self.api.call("POST", "/devices/cam-2/secret")
        self.assertEqual(code, 200)
        self.assertEqual(self.api.call("DELETE", "/devices/cam-2"), (204, None))
        self.assertEqual(self.api.call("GET", "/devices/cam-2"),
                         (404, {"error": "There is no device 'cam-2'."}))
        self.assertEqual({e.actor for e in self.fixture.audit()[:4]}, {"root"})

    def test_errors(self) -> None:
        """
        Invalid input gives 400, duplicates 409, each with a message.
        """
        self.assertEqual(self.api.call("POST", "/devices", {"deviceId": 7}),
                         (400, {"error": "The field 'deviceId' must be a string, not int."}))
        self.assertEqual(self.api.call("POST", "/devices", {}),
                         (400, {"error": "The field 'deviceId' is missing; give it as a string."}))
        code, body = self.api.call("POST", "/devices", {"deviceId": "cam-1"})
        self.assertEqual(code, 409)
        self.assertEqual(body, {"error": "device 'cam-1' already exists; choose another name"})
        browser = self.api.browser
        response = browser.request("POST", "/api/v1/devices", headers=self.api.headers,
                                   body=b"[1, 2")
        self.assertEqual(response.code, 400)
        self.assertIn("The request body is not valid JSON", browser.lastBody)

    def test_usersAndSelfProtection(self) -> None:
        """
        Users can be added with a one-time password; the caller cannot
        remove or demote their own account.
        """
        code, body = self.api.call("POST", "/users", {"name": "carol", "role": "admin"})
        self.assertEqual(code, 201)
        self.assertTrue(body["user"]["mustChangePassword"])
        self.assertEqual(self.api.call("DELETE", "/users/root")[0], 409)
        self.assertEqual(self.api.call("PATCH", "/users/root", {"role": "operator"})[0], 409)
        code, body = self.api.call("POST", "/users/carol/tokens", {"label": "ci"})
        self.assertEqual(code, 201)
        record = self.successResultOf(self.fixture.store.findApiToken(digest(body["token"])))
        self.assertEqual(record.user, "carol")
        self.assertEqual(self.api.call("POST", "/users/alice/tokens", {"label": "x"})[0], 409)

    def test_groupsRulesExplain(self) -> None:
        """
        Groups and rules made through the API show in the explanation.
        """
        self.assertEqual(self.api.call("POST", "/groups/user", {"name": "crew"})[0], 201)
        code, body = self.api.call("PUT", "/groups/user/crew/members/alice")
        self.assertEqual((code, body["members"]), (200, ["alice"]))
        code, rule = self.api.call("POST", "/rules", {
            "subjectKind": "user_group", "subject": "crew", "targetKind": "device",
            "target": "cam-1", "rights": ["video"],
            "schedule": {"days": [0, 1], "start": 60, "end": 120},
        })
        self.assertEqual(code, 201)
        self.assertEqual(rule["schedule"], {"days": [0, 1], "start": 60, "end": 120})
        code, body = self.api.call("GET", "/explain?user=alice&device=cam-1")
        self.assertEqual(body["rights"], [{"right": "video", "ruleId": rule["ruleId"]}])
        self.assertEqual(self.api.call("DELETE", f"/rules/{rule['ruleId']}"), (204, None))
        self.assertEqual(self.api.call("GET", "/explain?user=alice&device=cam-1")[1]["rights"],
                         [])

    def test_certificate(self) -> None:
        """
        A rejected pair gets 422 with the problems and changes nothing;
        a valid pair is installed.
        """
        before = self.fixture.tls.current.info.sha256
        keyPem, _ = selfSignedPair()
        _, otherCert = selfSignedPair()
        code, body = self.api.call("PUT", "/certificate", {
            "key": keyPem.decode(), "certificate": otherCert.decode()})
        self.assertEqual(code, 422)
        self.assertFalse(body["installed"])
        self.assertIn("key", [p["field"] for p in body["problems"] if p["severity"] == "error"])
        self.assertEqual(self.fixture.tls.current.info.sha256, before)
        keyPem, certPem = selfSignedPair()
        code, body = self.api.call("PUT", "/certificate", {
            "key": keyPem.decode(), "certificate": certPem.decode()})
        self.assertEqual((code, body["installed"]), (200, True))
        code, body = self.api.call("GET", "/certificate")
        self.assertEqual(body["sha256"], fingerprintOf(certPem))
        self.assertEqual(body["pem"], certPem.decode())

    def test_generateCsr(self) -> None:
        """
        The API can make a CSR, and then installs its signed certificate.
        """
        code, body = self.api.call("POST", "/certificate/generate",
                                   {"keyType": "ec-p256", "selfSigned": False})
        self.assertEqual(code, 200)
        self.assertTrue(body["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----"))
        code, body = self.api.call("PUT", "/certificate/signed", {"certificate": "junk"})
        self.assertEqual(code, 422)

    def test_settingsAndAudit(self) -> None:
        """
        Settings list every key with its restart need; the audit log filters.
        """
        code, body = self.api.call("GET", "/settings")
        byKey = {s["key"]: s for s in body}
        self.assertEqual(byKey["time_zone"]["restart"], False)
        self.assertEqual(byKey["client_port"]["value"], "tcp:12650")
        self.assertEqual(self.api.call("PUT", "/settings/client_port", {"value": "1"})[0], 404)
        self.assertEqual(self.api.call("PUT", "/settings/time_zone", {"value": "UTC"})[0], 200)
        code, body = self.api.call("GET", "/audit?actor=root&limit=5")
        self.assertEqual([e["action"] for e in body], ["setting.set"])
        self.assertEqual(self.api.call("GET", "/audit?limit=0")[0], 400)

    def test_status(self) -> None:
        """
        The status lists the hub's sessions and the certificate.
        """
        self.fixture.hub.entries.append({"role": "monitor", "name": "alice",
                                         "address": "192.0.2.1", "encrypted": False})
        code, body = self.api.call("GET", "/status")
        self.assertEqual(body["monitorsOnline"], 1)
        self.assertEqual(body["sessions"][0]["encrypted"], False)
        self.assertEqual(body["certificate"]["sha256"], self.fixture.tls.current.info.sha256)


class SchemathesisTests(TestCase):
    """
    schemathesis generates requests from the OpenAPI document and checks
    that every answer's status code and body match it.
    """

    timeout = 600

    async def test_conformance(self) -> None:
        """
        No API operation responds with an undocumented status, a body that
        breaks its schema, or a server error.
        """
        command = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
        if command is None:
            raise AssertionError(
                "schemathesis is required: .venv/bin/pip install schemathesis")
        server = ListeningAdmin(self, reactor, hubEntries=[{
            "role": "device", "name": "cam-1", "address": "127.0.0.1:5000",
            "encrypted": True, "since": 0.0, "bitrateIn": {"video": 1000.0},
        }])
        origin = await server.start()
        server.store.addUser("root", "admin", "not-a-hash", "test")
        server.store.addDevice("cam-1", "Camera", "not-a-hash", "test")
        server.store.addApiToken("root", "tests", digest("mrs_schemathesis"), "test")
        reportDir = Path(self.mktemp())
        d: Deferred[tuple[bytes, bytes, int]] = Deferred.fromCoroutine(_run(
            command,
            [
                "run", f"{origin}/api/v1/openapi.json",
                "--url", f"{origin}/api/v1",
                "--tls-verify", server.certificateFile(),
                "-H", "Authorization: Bearer mrs_schemathesis",
                "--checks",
                "status_code_conformance,response_schema_conformance,not_a_server_error",
                "--max-examples", "8",
                "--seed", "1",
                "--workers", "1",
                "--no-shrink",
                # A generated self-signed certificate would replace the one
                # schemathesis trusts; generation is tested above instead.
                "--exclude-path", "/certificate/generate",
                "--report-dir", str(reportDir),
            ],
        ))
        out, err, code = await d
        output = out.decode("utf-8", "replace") + err.decode("utf-8", "replace")
        self.assertEqual(code, 0, output[-6000:])
        self.assertIn("passed", output)


async def _run(command: str, args: list[str]) -> tuple[bytes, bytes, int]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS")}
    environment["NO_COLOR"] = "1"
    return await getProcessOutputAndValue(command, args, env=environment, reactor=reactor)
