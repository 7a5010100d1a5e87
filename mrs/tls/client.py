"""
Client-side TLS: verify the MRS server against a CA file or a pinned
certificate fingerprint.

Twisted 26's own client options (C{optionsForClientTLS}) only log when
service-identity raises C{CertificateError} for a certificate without
subjectAltName, and let the handshake finish for any host name.  The
creator here checks the host name itself and fails closed: a certificate
without subjectAltName is refused, because the Common Name is not checked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from OpenSSL import SSL, crypto
from service_identity import CertificateError, VerificationError
from service_identity.cryptography import (
    verify_certificate_hostname,
    verify_certificate_ip_address,
)
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from mrs.tls.validate import fingerprint as certificateFingerprint

_FINGERPRINT = re.compile(r"^[0-9A-F]{64}$")

# Texts of the OpenSSL verification errors that clients usually meet, so the
# message does not depend on OpenSSL's private error-string function.
_VERIFY_ERRORS = {
    2: "unable to get issuer certificate",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
    26: "unsupported certificate purpose",
    66: "EE certificate key too weak",
    68: "CA signature digest algorithm too weak",
    79: "invalid CA certificate",
}


class ServerVerificationError(Exception):
    """
    The server's certificate failed verification.  The message names the
    expected host name, what the certificate carries, and the option that
    fixes it.
    """


def normalizeFingerprint(text: str) -> str:
    """
    Return a SHA-256 fingerprint as upper-case hex pairs joined by colons.

    @raise ValueError: unless C{text} is 64 hex digits, with or without
        colons, spaces or a C{sha256:} prefix.
    """
    compact = re.sub(r"[\s:]", "", text.strip().upper().removeprefix("SHA256"))
    if not _FINGERPRINT.match(compact):
        raise ValueError(
            f"fingerprint {text!r} is invalid; expected the SHA-256 fingerprint as 64 hex "
            f"digits, such as the output of: openssl x509 -noout -fingerprint -sha256 -in "
            f"cert.pem"
        )
    return ":".join(compact[i : i + 2] for i in range(0, 64, 2))


def clientCreator(
    hostname: str,
    caFile: str | Path | None = None,
    fingerprint: str | None = None,
    alpn: Sequence[bytes] = (b"mrs/1",),
) -> ClientConnectionCreator:
    """
    Return a connection creator that verifies the server as C{hostname}.

    @param caFile: PEM file of the CA certificates (or the self-signed
        server certificate) to trust; without it and without
        C{fingerprint}, the system's trust store.
    @param fingerprint: SHA-256 fingerprint of the server certificate to
        pin; the certificate's issuer and names are then not checked.
    @param alpn: the ALPN protocols to offer.
    @raise ValueError: for an invalid fingerprint or a CA file that cannot
        be read.
    """
    return ClientConnectionCreator(hostname, caFile, fingerprint, alpn)


@implementer(IOpenSSLClientConnectionCreator)
class ClientConnectionCreator:
    """
    Make client TLS connections (TLS 1.2 or later) that verify the server.
    """

    log = Logger()

    def __init__(
        self,
        hostname: str,
        caFile: str | Path | None,
        fingerprint: str | None,
        alpn: Sequence[bytes],
    ) -> None:
        self.hostname = hostname
        self.caFile = str(caFile) if caFile is not None else None
        self.fingerprint = normalizeFingerprint(fingerprint) if fingerprint else None
        try:
            ipaddress.ip_address(hostname)
            self._isAddress = True
        except ValueError:
            self._isAddress = False
        self._context = SSL.Context(SSL.TLS_METHOD)
        self._context.set_min_proto_version(SSL.TLS1_2_VERSION)
        self._context.set_alpn_protos(list(alpn))
        if self.fingerprint is None:
            if self.caFile is not None:
                if not Path(self.caFile).is_file():
                    raise ValueError(
                        f"CA file {self.caFile} not found; pass the server's certificate "
                        f"(DATA_DIR/tls/server.crt on the server, or the download on the "
                        f"admin page Server Authentication) or the CA that issued it"
                    )
                try:
                    self._context.load_verify_locations(self.caFile)
                except SSL.Error as e:
                    raise ValueError(
                        f"CA file {self.caFile} cannot be read as PEM certificates ({e}); pass "
                        f"a PEM file with the CA certificate that issued the server's "
                        f"certificate"
                    )
            else:
                self._context.set_default_verify_paths()

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """
        Create the OpenSSL connection for one client TLS connection.
        """
        connection = SSL.Connection(self._context, None)
        if not self._isAddress:
            connection.set_tlsext_host_name(self.hostname.encode("idna"))
        connection.set_verify(
            SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
            _Verifier(self, tlsProtocol).verify,
        )
        return connection

    def trustSource(self) -> str:
        return f"the CA file {self.caFile}" if self.caFile else "the system's trusted CAs"


class _Verifier:
    """
    The verify callback of one connection.  It reports the first failure
    to the TLS protocol, which passes it to C{connectionLost}.
    """

    def __init__(self, creator: ClientConnectionCreator, tlsProtocol: Any) -> None:
        self._creator = creator
        self._tlsProtocol: Any = tlsProtocol

    def verify(
        self, connection: SSL.Connection, certificate: crypto.X509, errno: int, depth: int, ok: int
    ) -> bool:
        try:
            message = self._problem(certificate.to_cryptography(), errno, depth, bool(ok))
        except Exception:
            # An exception raised inside an OpenSSL callback would be lost;
            # log it and fail closed.
            ClientConnectionCreator.log.failure("while verifying the server certificate")
            message = "the server certificate could not be verified because of an internal error"
        if message is None:
            return True
        if self._tlsProtocol is not None:
            self._tlsProtocol.failVerification(Failure(ServerVerificationError(message)))
            self._tlsProtocol = None
        return False

    def _problem(
        self, certificate: x509.Certificate, errno: int, depth: int, ok: bool
    ) -> str | None:
        creator = self._creator
        host = creator.hostname
        if creator.fingerprint is not None:
            if depth != 0:
                return None
            actual = certificateFingerprint(certificate)
            if actual == creator.fingerprint:
                return None
            return (
                f"The server {host} presented a certificate with SHA-256 fingerprint {actual}, "
                f"but --fingerprint pins {creator.fingerprint}. If the server's certificate "
                f"was replaced on purpose, pin the new fingerprint (shown by mrs tls show on "
                f"the server); otherwise something else is answering for {host}."
            )
        if not ok:
            reason = _VERIFY_ERRORS.get(errno, f"verification error {errno}")
            return (
                f"The server certificate for {host} is not trusted: OpenSSL reports '{reason}' "
                f"for '{certificate.subject.rfc4514_string()}', issued by "
                f"'{certificate.issuer.rfc4514_string()}', which {creator.trustSource()} does "
                f"not vouch for. Pass the CA certificate that issued the server's certificate "
                f"(or the server's self-signed certificate) with --ca-file, or pin the "
                f"server's certificate with --fingerprint."
            )
        if depth != 0:
            return None
        return _hostNameProblem(certificate, host, creator._isAddress)


def _hostNameProblem(certificate: x509.Certificate, host: str, isAddress: bool) -> str | None:
    pin = f"--fingerprint {certificateFingerprint(certificate)}"
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (
            f"The server certificate for {host} has no subjectAltName (its subject is "
            f"'{certificate.subject.rfc4514_string()}'), so its host name cannot be checked: "
            f"this client, like browsers and service-identity, ignores the Common Name. "
            f"Re-make the server's certificate with subjectAltName DNS:{host} (mrs tls "
            f"generate does), or pin this certificate with {pin}."
        )
    try:
        if isAddress:
            verify_certificate_ip_address(certificate, host)
        else:
            verify_certificate_hostname(certificate, host)
    except (VerificationError, CertificateError):
        names = [f"DNS:{n}" for n in sans.get_values_for_type(x509.DNSName)]
        names += [f"IP:{a}" for a in sans.get_values_for_type(x509.IPAddress)]
        return (
            f"The server certificate is not valid for {host}: its subjectAltName contains "
            f"only {', '.join(names) or '(no DNS or IP entries)'}. Connect with one of those "
            f"names, or add {host} to the server's server_names and install a certificate "
            f"that covers it; to accept this certificate anyway, pin it with {pin}."
        )
    return None
