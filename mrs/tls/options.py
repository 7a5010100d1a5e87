"""
Server-side TLS settings: protocol versions, ciphers, ALPN and the
connection creator that every TLS listener shares.

The ciphers follow Mozilla's "intermediate" server configuration for
TLS 1.2 (ECDHE with AES-GCM or ChaCha20-Poly1305; TLS 1.3 uses OpenSSL's
defaults, which are all AEAD).  Its DHE suites are left out because the
server configures no DH parameters, so OpenSSL would never choose them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion
from zope.interface import implementer

from mrs.tls.validate import CertificateInfo, certificateInfo

INTERMEDIATE_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
"""
TLS 1.2 cipher suites of Mozilla's "intermediate" configuration, without DHE.
"""

LEGACY_CIPHERS = (
    INTERMEDIATE_CIPHERS
    + ":"
    + ":".join(
        [
            "ECDHE-ECDSA-AES128-SHA",
            "ECDHE-RSA-AES128-SHA",
            "ECDHE-ECDSA-AES256-SHA",
            "ECDHE-RSA-AES256-SHA",
            "AES128-SHA",
            "AES256-SHA",
        ]
    )
)
"""
Ciphers for a minimum version of TLS 1.0 or 1.1: TLS 1.0 and 1.1 have no
AEAD suites, so their clients need the CBC suites of Mozilla's "old"
configuration.
"""

_VERSIONS = {
    "1.0": TLSVersion.TLSv1_0,
    "1.1": TLSVersion.TLSv1_1,
    "1.2": TLSVersion.TLSv1_2,
    "1.3": TLSVersion.TLSv1_3,
}
_LEGACY_VERSIONS = ("1.0", "1.1")


def minVersionWarning(minVersion: str) -> str | None:
    """
    Return the warning to log and show on the admin page for a minimum TLS
    version below 1.2, or L{None}.
    """
    if minVersion not in _LEGACY_VERSIONS:
        return None
    return (
        f"The minimum TLS version is {minVersion}, so clients may connect with TLS "
        f"{minVersion}, which has known weaknesses and is no longer supported by browsers. "
        f"To allow it the server lowers its OpenSSL security level to 0 and adds CBC cipher "
        f"suites with SHA-1 MACs. Set min_tls_version = 1.2 once the legacy clients are "
        f"updated."
    )


def cipherString(minVersion: str) -> str:
    """
    Return the OpenSSL cipher string for C{minVersion}, including the
    security level that really allows that version.

    OpenSSL 3 refuses TLS 1.0 and 1.1 handshakes above security level 0,
    because their handshake signatures use SHA-1.
    """
    if minVersion in _LEGACY_VERSIONS:
        return LEGACY_CIPHERS + ":@SECLEVEL=0"
    return INTERMEDIATE_CIPHERS


GROUPS = ("X25519MLKEM768:X25519:prime256v1:secp384r1", "X25519:prime256v1:secp384r1")
"""
Key exchange groups, most preferred first: Mozilla's "intermediate" list,
led by the hybrid post-quantum group where the OpenSSL build has it.
"""


def _restrictGroups(context: SSL.Context) -> None:
    # pyOpenSSL 26 has no API for the groups list, so this calls OpenSSL
    # through the bindings pyOpenSSL itself uses.  Without it OpenSSL also
    # offers X448 and P-521, which the intermediate configuration leaves out.
    from OpenSSL._util import lib

    setGroups = getattr(lib, "SSL_CTX_set1_curves_list", None)
    if setGroups is None:
        return
    for groups in GROUPS:
        if setGroups(context._context, groups.encode("ascii")) == 1:  # type: ignore[attr-defined]
            return


def _writeWholeBuffers(context: SSL.Context) -> None:
    # pyOpenSSL turns on OpenSSL's partial writes, so SSL_write returns after
    # each record of at most 16 KiB and a 20 kB video frame takes two calls
    # through pyOpenSSL for every monitor.  The server's TLS layers write
    # into memory BIOs, where a write always completes, so whole-buffer
    # writes are safe and save those calls.  pyOpenSSL 26 has no API to
    # clear a mode either.
    from OpenSSL._util import lib

    clearMode = getattr(lib, "SSL_CTX_clear_mode", None)
    if clearMode is not None:
        clearMode(context._context, lib.SSL_MODE_ENABLE_PARTIAL_WRITE)  # type: ignore[attr-defined]


def _refusePassphrasePrompt(maxLength: int, verify: bool, userData: object) -> bytes:
    # OpenSSL would otherwise read a passphrase from the terminal and hang a
    # server that runs unattended.  Keys are decrypted by cryptography before
    # they reach OpenSSL, so this callback should never run.
    return b""


class ServedPair:
    """
    A validated private key and certificate chain, with the TLS contexts
    made from them.

    @ivar info: the server certificate's details.
    @ivar chainInfo: the intermediates' details.
    @ivar certificatePem: the server certificate and intermediates, leaf first.
    """

    def __init__(
        self,
        privateKey: CertificateIssuerPrivateKeyTypes,
        certificates: Sequence[x509.Certificate],
        minVersion: str,
        certificatePem: bytes,
    ) -> None:
        if minVersion not in _VERSIONS:
            raise ValueError(
                f"minimum TLS version {minVersion!r} is invalid; use 1.0, 1.1, 1.2 or 1.3"
            )
        self._privateKey = privateKey
        self._certificates = list(certificates)
        self._minVersion = minVersion
        self.info: CertificateInfo = certificateInfo(certificates[0])
        self.chainInfo = [certificateInfo(c) for c in certificates[1:]]
        self.certificatePem = certificatePem
        self._options: dict[tuple[bytes, ...], CertificateOptions] = {}

    def options(self, alpn: Sequence[bytes]) -> CertificateOptions:
        """
        Return the L{CertificateOptions} for listeners offering C{alpn}.

        The chain is passed explicitly as C{extraCertChain}, because
        C{PrivateCertificate.loadPEM} and the C{ssl:} endpoint keep only the
        first certificate of a PEM file.  C{acceptableProtocols} is always
        set, because Twisted 26.10 with pyOpenSSL 26.4 responds to a ClientHello
        offering ALPN with a fatal internal_error alert when it is not.
        """
        if not alpn:
            raise ValueError("a TLS listener must name its ALPN protocols, such as [b'mrs/1']")
        key = tuple(alpn)
        options = self._options.get(key)
        if options is None:
            versionArguments: dict[str, Any]
            if self._minVersion in _LEGACY_VERSIONS:
                versionArguments = {"insecurelyLowerMinimumTo": _VERSIONS[self._minVersion]}
            else:
                versionArguments = {"raiseMinimumTo": _VERSIONS[self._minVersion]}
            options = CertificateOptions(
                privateKey=crypto.PKey.from_cryptography_key(self._privateKey),  # type: ignore[arg-type]
                certificate=crypto.X509.from_cryptography(self._certificates[0]),
                extraCertChain=[crypto.X509.from_cryptography(c) for c in self._certificates[1:]],
                acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(
                    INTERMEDIATE_CIPHERS
                    if self._minVersion not in _LEGACY_VERSIONS
                    else LEGACY_CIPHERS
                ),
                acceptableProtocols=list(alpn),
                **versionArguments,
            )
            context = options.getContext()
            context.set_passwd_cb(_refusePassphrasePrompt)
            _restrictGroups(context)
            _writeWholeBuffers(context)
            # Set the list again with the security level, which
            # AcceptableCiphers drops.
            context.set_cipher_list(cipherString(self._minVersion).encode("ascii"))
            self._options[key] = options
        return options

    def context(self, alpn: Sequence[bytes]) -> SSL.Context:
        """
        Return the OpenSSL context for listeners offering C{alpn}.
        """
        return self.options(alpn).getContext()


@implementer(IOpenSSLServerConnectionCreator)
class ServerConnectionCreator:
    """
    Make each server TLS connection from the pair that is current at the
    moment of the handshake, so an installed pair applies to the next
    handshake while open connections keep theirs.
    """

    def __init__(self, currentPair: Callable[[], ServedPair], alpn: Sequence[bytes]) -> None:
        if not alpn:
            raise ValueError("a TLS listener must name its ALPN protocols, such as [b'mrs/1']")
        self._currentPair = currentPair
        self.alpn = list(alpn)

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        """
        Create the OpenSSL connection for one accepted TLS connection.
        """
        return SSL.Connection(self._currentPair().context(self.alpn), None)
