"""
Administrator -> Server Authentication: the server's private key and
certificate.

The page shows the certificate being served and offers it for download, so
an administrator can trust it on their machine.  A pasted or uploaded key
and certificate are validated by the TLS material (C{tls.check} or
C{tls.install}) and every problem is shown next to the box it concerns.  A
pair with errors is never installed, so the working pair stays in use.  A
pasted private key is never written back into a page.  The server can also
generate a key with a self-signed certificate, or a key with a certificate
signing request whose signed certificate is pasted back later.  The pending
key stays with the TLS material on the server, which uses it when a
certificate is installed with an empty key.
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
)
from mrs.admin.sessions import AdminSession
from mrs.admin.status import currentPair
from mrs.tls import GenerateError, SubjectFields

BASE = "/admin/server-authentication"

#: Key types offered for generation, as the configuration names them.
KEY_TYPES: tuple[tuple[str, str], ...] = (
    ("rsa2048", "RSA 2048 bit"),
    ("rsa3072", "RSA 3072 bit"),
    ("rsa4096", "RSA 4096 bit"),
    ("ec-p256", "EC P-256"),
    ("ec-p384", "EC P-384"),
)

BOXES: tuple[tuple[str, str, str], ...] = (
    ("key", "Private Key", "PEM, beginning with -----BEGIN PRIVATE KEY----- or similar."),
    ("certificate", "Certificate",
     "PEM: the server certificate, optionally followed by intermediates."),
    ("chain", "Chain (optional)", "PEM intermediates, if not already in the certificate box."),
)


def certificateDetails(info: Any, elementId: str = "certificate-details") -> html.Markup:
    """
    Render a certificate's subject, names, issuer, validity and
    fingerprint.
    """
    sans = ", ".join(str(name) for name in info.sans) or "none"
    return html.Markup(
        '<dl class="facts" id="{id}">'
        "<dt>Subject</dt><dd>{subject}</dd>"
        "<dt>Names (subjectAltName)</dt><dd>{sans}</dd>"
        "<dt>Issuer</dt><dd>{issuer}{selfSigned}</dd>"
        "<dt>Valid from</dt><dd>{notBefore}</dd>"
        "<dt>Valid until</dt><dd>{notAfter}</dd>"
        "<dt>Key</dt><dd>{key}</dd>"
        '<dt>SHA-256 fingerprint</dt><dd><code class="fingerprint">{sha256}</code></dd>'
        "</dl>"
    ).format(
        id=elementId,
        subject=info.subject,
        sans=sans,
        issuer=info.issuer,
        selfSigned=" (self-signed)" if getattr(info, "selfSigned", False) else "",
        notBefore=info.notBefore.isoformat(),
        notAfter=info.notAfter.isoformat(),
        key=getattr(info, "keyDescription", ""),
        sha256=info.sha256,
    )


def _upload(request: IRequest, name: str) -> bytes:
    """
    Return a box's content: the uploaded file when one was chosen, else the
    pasted text.
    """
    uploaded = request.args.get(f"{name}_file".encode("ascii"), [b""])[0]
    if isinstance(uploaded, bytes) and uploaded.strip():
        return uploaded
    return formValue(request, name).encode("utf-8")


def _rejectedReport(error: BaseException) -> Any:
    """
    Return the report carried by the TLS material's C{InstallRejected}, or
    L{None} for any other exception.
    """
    return getattr(error, "report", None)


class ServerAuthenticationPages(RouteGroup):
    """
    Mounted at C{/admin/server-authentication}.
    """

    app = Klein()

    async def _render(
        self,
        request: IRequest,
        session: AdminSession,
        *,
        form: html.Form | None = None,
        problems: list[Any] | None = None,
        message: html.Markup | None = None,
        csr: bytes | None = None,
    ) -> bytes:
        tls = self.admin.tls
        csrf = session.csrfToken
        form = form or html.Form()
        problemsByBox: dict[str, list[tuple[str, str]]] = {}
        for problem in problems or []:
            problemsByBox.setdefault(problem.field, []).append(
                (problem.severity, problem.message))

        current = currentPair(tls)
        if current is not None and getattr(current, "info", None) is not None:
            days = float(tls.daysToExpiry())
            currentBox = certificateDetails(current.info) + html.Markup(
                '<p>Expires in <span class="{cls}">{days:.0f} days</span>. '
                '<a href="{base}/certificate.pem" download="mrs-server.pem">'
                "Download the certificate</a> to trust it on your machine.</p>"
            ).format(cls="warn" if days < 30 else "ok", days=days, base=BASE)
        else:
            currentBox = html.notice("No certificate is loaded yet.", "warning")

        keyNote = ""
        if form.value("keyWasGiven"):
            keyNote = (
                "For your safety the private key is not shown again; "
                "paste or upload it again."
            )
        boxes = html.Markup("")
        for name, label, hint in BOXES:
            # A key pasted into the wrong box must not come back either.
            holdsKey = name == "key" or "PRIVATE KEY" in (form.value(name) or "")
            boxes += html.textArea(
                form, name, label, formId="pair",
                hint=(keyNote or hint) if name == "key" else hint,
                keepValue=not holdsKey,
                extraErrors=problemsByBox.pop(name, []),
            )
        boxes += html.field(form, "passphrase", "Passphrase (for an encrypted key)",
                            kind="password", formId="pair", keepValue=False,
                            autocomplete="off")
        for severity, text in problemsByBox.pop("passphrase", []):
            boxes += html.Markup('<p class="message {s}" id="pair-passphrase-{s}">{t}</p>').format(
                s=severity, t=text)
        for other in problemsByBox.values():
            for severity, text in other:
                boxes += html.Markup('<p class="message {s}">{t}</p>').format(s=severity, t=text)
        boxes += html.Markup(
            '<button type="submit" name="action" value="check" class="secondary">'
            "Check only</button> "
        )
        installForm = html.postForm(f"{BASE}/install", csrf, boxes, "Install and use",
                                    formId="install-pair", multipart=True)

        pending = await tls.pendingRequest()
        pendingBox = html.Markup("")
        if csr is not None or pending:
            csrText = (csr if csr is not None else pending or b"").decode("ascii", "replace")
            pendingBox = html.Markup(
                "<h2>Pending certificate signing request</h2>"
                '<div class="field"><label for="csr">Certificate signing request</label>'
                '<textarea id="csr" rows="8" readonly spellcheck="false">{csr}</textarea></div>'
                '<p><a href="{base}/request.csr" download="mrs-server.csr">Download the '
                "request</a>, have it signed by your certificate authority, then paste the "
                "signed certificate here.  The matching private key stays on the server.</p>"
            ).format(csr=csrText, base=BASE) + html.postForm(
                f"{BASE}/signed", csrf,
                html.textArea(form, "signed", "Signed certificate", formId="signed",
                              extraErrors=problemsByBox.pop("signed", []))
                + html.textArea(form, "signedChain", "Chain (optional)", formId="signed"),
                "Install signed certificate", formId="install-signed", multipart=True,
            )

        if not form.value("keyType"):
            form.values["keyType"] = self.admin.config.key_type
        generateForm = html.postForm(
            f"{BASE}/generate", csrf,
            html.select(form, "keyType", "Key type", KEY_TYPES, formId="generate")
            + html.Markup('<div class="row">')
            + html.field(form, "commonName", "Common name (optional)", formId="generate",
                         hint="Default: the first server name.")
            + html.field(form, "organization", "Organization (optional)", formId="generate")
            + html.Markup("</div>")
            + html.Markup(
                '<fieldset class="field"><legend>What to make</legend>'
                '<span class="check"><input type="radio" id="generate-self" name="mode" '
                'value="self-signed" checked><label for="generate-self">a new key and a '
                "self-signed certificate, installed at once</label></span>"
                '<span class="check"><input type="radio" id="generate-csr" name="mode" '
                'value="csr"><label for="generate-csr">a new key and a certificate signing '
                "request for a certificate authority</label></span></fieldset>"
            ),
            "Generate", formId="generate-key",
        )
        names = ", ".join(self.admin.config.server_names)
        body = (message or html.Markup("")) + html.Markup(
            "<h2>Current certificate</h2>{current}"
            "<h2>Install a key and certificate</h2>"
            '<p class="hint">Clients reach this server as: {names}. The certificate must '
            "name them.</p>{install}{pending}"
            "<h2>Generate a key</h2>{generate}"
        ).format(current=currentBox, names=names, install=installForm, pending=pendingBox,
                 generate=generateForm)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return html.page("Server Authentication", body, user=session.user, csrfToken=csrf,
                         current=BASE)

    @app.route("/", strict_slashes=False, methods=["GET"])
    @adminPage
    async def show(self, request: IRequest, session: AdminSession) -> bytes:
        return await self._render(request, session)

    @app.route("/install", methods=["POST"])
    @adminPage
    async def install(self, request: IRequest, session: AdminSession) -> bytes:
        keyPem = _upload(request, "key")
        certPem = _upload(request, "certificate")
        chainPem = _upload(request, "chain")
        passphrase = formValue(request, "passphrase") or None
        checkOnly = formValue(request, "action") == "check"
        form = html.Form({
            "certificate": certPem.decode("utf-8", "replace"),
            "chain": chainPem.decode("utf-8", "replace"),
            "keyWasGiven": "yes" if keyPem.strip() else "",
        })
        tls = self.admin.tls

        if checkOnly:
            report = await tls.check(keyPem, certPem, chainPem, passphrase)
            status = 200 if not report.errors else 400
            request.setResponseCode(status)
            message = html.notice(
                "The pair passed the checks; nothing was installed yet."
                if not report.errors else
                "The pair has errors, shown next to the boxes; nothing was installed.",
                "ok" if not report.errors else "error",
            )
            if report.info is not None:
                message += certificateDetails(report.info, "checked-details")
            return await self._render(request, session, form=form, problems=report.problems,
                                      message=message)

        try:
            report = await tls.install(keyPem, certPem, chainPem, passphrase,
                                       actor=session.user)
        except Exception as e:
            report = _rejectedReport(e)
            if report is None:
                raise
            self.admin.log.warn(
                "Admin {user!r} tried to install a key and certificate with errors; "
                "the current pair stays in use", user=session.user,
            )
            request.setResponseCode(400)
            return await self._render(
                request, session, form=form, problems=report.problems,
                message=html.notice(
                    "The pair was not installed; the current certificate stays in use. "
                    "Fix the errors shown next to the boxes.", "error"),
            )

        self.admin.log.info("Admin {user!r} installed a new key and certificate",
                            user=session.user)
        warnings = [p for p in report.problems if p.severity == "warning"]
        return await self._render(
            request, session, problems=warnings,
            message=html.notice(
                "The new key and certificate are installed and used for new connections.",
                "ok"),
        )

    @app.route("/generate", methods=["POST"])
    @adminPage
    async def generate(self, request: IRequest, session: AdminSession) -> bytes:
        keyType = formValue(request, "keyType")
        mode = formValue(request, "mode")
        commonName = formValue(request, "commonName").strip() or None
        organization = formValue(request, "organization").strip() or None
        form = html.Form({"keyType": keyType, "commonName": commonName or "",
                          "organization": organization or ""})
        if keyType not in dict(KEY_TYPES):
            form.errors["keyType"] = "Choose one of the listed key types."
        if mode not in ("self-signed", "csr"):
            form.errors["keyType"] = "Choose a self-signed certificate or a signing request."
        if form.errors:
            request.setResponseCode(400)
            return await self._render(request, session, form=form)

        tls = self.admin.tls
        subject = SubjectFields(commonName=commonName, organization=organization)
        try:
            result = await tls.generate(keyType, selfSigned=mode == "self-signed",
                                        subject=subject, actor=session.user)
        except GenerateError as e:
            form.errors["commonName"] = str(e)
            request.setResponseCode(400)
            return await self._render(request, session, form=form)

        if mode == "self-signed":
            self.admin.log.info("Admin {user!r} generated a self-signed certificate",
                                user=session.user)
            return await self._render(
                request, session,
                message=html.notice("A new key and self-signed certificate are installed "
                                    "and used for new connections.", "ok"))
        csr = result.requestPem
        self.admin.log.info("Admin {user!r} generated a certificate signing request",
                            user=session.user)
        return await self._render(
            request, session, csr=csr,
            message=html.notice("A new key and certificate signing request were made; the "
                                "current certificate stays in use until the signed one is "
                                "installed.", "ok"))

    @app.route("/signed", methods=["POST"])
    @adminPage
    async def installSigned(self, request: IRequest, session: AdminSession) -> bytes:
        certPem = _upload(request, "signed")
        chainPem = _upload(request, "signedChain")
        form = html.Form({"signed": certPem.decode("utf-8", "replace"),
                          "signedChain": chainPem.decode("utf-8", "replace")})
        try:
            # With an empty key, the TLS material uses the pending request's key.
            report = await self.admin.tls.install(b"", certPem, chainPem, actor=session.user)
        except Exception as e:
            report = _rejectedReport(e)
            if report is None:
                raise
            request.setResponseCode(400)
            problems = [
                _Relabelled("signed" if p.field in ("certificate", "key") else p.field,
                            p.severity, p.message)
                for p in report.problems
            ]
            return await self._render(
                request, session, form=form, problems=problems,
                message=html.notice("The signed certificate was not installed; the current "
                                    "certificate stays in use.", "error"))
        warnings = [p for p in report.problems if p.severity == "warning"]
        return await self._render(
            request, session, problems=warnings,
            message=html.notice("The signed certificate is installed and used for new "
                                "connections.", "ok"))

    @app.route("/request.csr", methods=["GET"])
    @adminPage
    async def downloadRequest(self, request: IRequest, session: AdminSession) -> bytes:
        pending = await self.admin.tls.pendingRequest()
        if not pending:
            raise PageNotFound("There is no pending certificate signing request; generate one.")
        request.setHeader(b"content-type", b"application/pkcs10")
        request.setHeader(b"content-disposition", b'attachment; filename="mrs-server.csr"')
        return bytes(pending)

    @app.route("/certificate.pem", methods=["GET"])
    @adminPage
    async def downloadCertificate(self, request: IRequest, session: AdminSession) -> bytes:
        current = currentPair(self.admin.tls)
        if current is None:
            raise PageNotFound("No certificate is loaded yet.")
        request.setHeader(b"content-type", b"application/x-pem-file")
        request.setHeader(b"content-disposition", b'attachment; filename="mrs-server.pem"')
        return bytes(current.certificatePem)


class _Relabelled:
    """
    A problem moved to another box of the page.
    """

    def __init__(self, field: str, severity: str, message: str) -> None:
        self.field = field
        self.severity = severity
        self.message = message


installErrorHandler(ServerAuthenticationPages.app)
