"""
Drive the admin site in headless Chromium with Playwright's synchronous API.

Run as C{python -m tests.browser_driver SCENARIO.json}; the JSON object
gives the site's C{origin}, the C{scenario} name and its inputs.  The
driver prints one JSON object with what it saw and exits with status 1
and a message when a step fails.  The browser runs in this separate
process because Playwright's synchronous API cannot run inside the
reactor thread of a trial test.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, ViewportSize, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


class StepFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def screenshots(page: Page, directory: Path, name: str) -> list[str]:
    """
    Save full-page screenshots of the current page at desktop and phone
    widths.
    """
    paths = []
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        path = directory / f"mrs-{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(str(path))
    page.set_viewport_size(DESKTOP)
    return paths


def fullTour(page: Page, inputs: dict[str, Any]) -> dict[str, Any]:
    """
    Sign in with the first password, change it, add a device and a user,
    grant a right, install a pasted pair, fail with a mismatched one,
    generate a CSR and see the live device on the dashboard.
    """
    origin = inputs["origin"]
    shots = Path(inputs["screenshots"])
    seen: dict[str, Any] = {"screenshots": []}

    page.goto(origin + "/admin")
    expect(page.url.startswith(origin + "/admin/login"), f"not sent to login: {page.url}")
    page.fill("#username", inputs["user"])
    page.fill("#password", inputs["firstPassword"])
    page.click("button:has-text('Sign in')")
    page.wait_for_url(origin + "/admin/account")
    expect("one-time password" in page.content(), "no forced password change notice")
    page.fill("#current", inputs["firstPassword"])
    page.fill("#new", inputs["newPassword"])
    page.fill("#repeat", inputs["newPassword"])
    page.click("button:has-text('Change password')")
    page.wait_for_selector("text=Your password was changed.")

    page.goto(origin + "/admin")
    page.wait_for_selector("#sessions td:has-text('cam-live')")
    # The event stream replaces the table; wait for the first update.
    page.wait_for_selector("#live-state:has-text('Live, updated')")
    seen["dashboardRow"] = page.inner_text("#sessions tbody tr")
    seen["screenshots"] += screenshots(page, shots, "dashboard")

    page.click("nav >> text=Devices")
    page.fill("#add-deviceId", "cam-7")
    page.fill("#add-displayName", "Loading dock")
    page.click("button:has-text('Add device')")
    seen["deviceSecret"] = page.inner_text("code.secret")
    expect("cam-7" in page.inner_text("#devices"), "new device not listed")

    page.click("nav >> text=Users")
    page.fill("#add-name", "dispatcher")
    page.select_option("#add-role", "operator")
    page.click("button:has-text('Add user')")
    expect(page.is_visible("code.secret"), "no one-time password shown")

    page.click("nav >> text=Permissions")
    page.select_option("#rule-subjectKind", "user")
    page.fill("#rule-subject", "dispatcher")
    page.fill("#rule-target", "cam-7")
    page.check("#rule-rights-video")
    page.check("#rule-rights-location")
    page.click("button:has-text('Add rule')")
    page.wait_for_selector("text=The rule was added.")
    seen["ruleRow"] = page.inner_text("#rules tbody tr")
    seen["screenshots"] += screenshots(page, shots, "permissions")

    page.click("nav >> text=Server Authentication")
    seen["oldFingerprint"] = page.inner_text("#certificate-details code.fingerprint")
    page.fill("#pair-key", inputs["goodKey"])
    page.fill("#pair-certificate", inputs["goodCertificate"])
    page.click("button:has-text('Install and use')")
    page.wait_for_selector("text=The new key and certificate are installed")
    seen["installedFingerprint"] = page.inner_text("#certificate-details code.fingerprint")

    page.fill("#pair-key", inputs["otherKey"])
    page.fill("#pair-certificate", inputs["goodCertificate"])
    page.click("button:has-text('Install and use')")
    page.wait_for_selector("text=The pair was not installed")
    seen["keyError"] = page.inner_text("#pair-key-error")
    seen["keyBoxAfterFailure"] = page.input_value("#pair-key")
    seen["fingerprintAfterFailure"] = page.inner_text("#certificate-details code.fingerprint")
    seen["screenshots"] += screenshots(page, shots, "server-authentication-error")

    page.check("#generate-csr")
    page.click("button:has-text('Generate')")
    page.wait_for_selector("#csr")
    seen["csr"] = page.input_value("#csr")
    seen["screenshots"] += screenshots(page, shots, "server-authentication")
    return seen


def liveDashboard(page: Page, inputs: dict[str, Any]) -> dict[str, Any]:
    """
    Sign in, open the dashboard, tell the test it is open (the file
    C{readyFile}), watch the device C{device} appear without a reload, then
    install a pasted key and certificate.
    """
    origin = inputs["origin"]
    seen: dict[str, Any] = {}
    page.goto(origin + "/admin")
    page.fill("#username", inputs["user"])
    page.fill("#password", inputs["password"])
    page.click("button:has-text('Sign in')")
    page.wait_for_url(origin + "/admin**")
    page.goto(origin + "/admin")
    page.wait_for_selector("#live-state:has-text('Live, updated')")
    expect(inputs["device"] not in page.inner_text("#sessions"), "device shown too early")
    # A reload would drop this marker; it proves the row arrives live.
    page.evaluate("window.mrsMarker = 42")
    Path(inputs["readyFile"]).write_text("ready")
    row = page.wait_for_selector(f"#sessions tr:has-text('{inputs['device']}')",
                                 timeout=20000)
    expect(row is not None, "the device never appeared")
    seen["dashboardRow"] = row.inner_text() if row is not None else ""
    seen["marker"] = page.evaluate("window.mrsMarker")

    page.click("nav >> text=Server Authentication")
    page.fill("#pair-key", inputs["key"])
    page.fill("#pair-certificate", inputs["certificate"])
    page.click("button:has-text('Install and use')")
    page.wait_for_selector("text=The new key and certificate are installed")
    seen["installedFingerprint"] = page.inner_text("#certificate-details code.fingerprint")
    return seen


SCENARIOS = {"fullTour": fullTour, "liveDashboard": liveDashboard}


def main(argv: list[str]) -> int:
    inputs = json.loads(Path(argv[1]).read_text())
    # With trustSpki, the browser verifies the server against those public
    # key pins instead of ignoring certificate errors.
    pins = inputs.get("trustSpki")
    args = list(CHROMIUM_ARGS)
    if pins:
        args.append("--ignore-certificate-errors-spki-list=" + ",".join(pins))
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=args,
            headless=True,
            ignore_https_errors=not pins,
            viewport=DESKTOP,
        )
        context.set_default_timeout(15000)
        page = context.new_page()
        try:
            seen = SCENARIOS[inputs["scenario"]](page, inputs)
        except Exception as e:
            print(json.dumps({"error": f"{type(e).__name__}: {e}", "url": page.url,
                              "page": page.inner_text("body")[:3000]}))
            return 1
        finally:
            context.close()
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
