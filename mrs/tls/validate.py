"""
Decide whether a pasted private key and certificate chain can serve TLS.

L{checkPair} is synchronous and CPU-bound (it parses keys and checks
signatures), so callers on the reactor thread run it in a thread.  It
returns a L{Report} whose problems are errors (the pair must not be
installed) or warnings (shown, but the pair works), each with a message
that names the problem and the fix.

The decisions follow what TLS clients do in practice.  OpenSSL at security
level 2 rejects RSA keys under 2048 bits and MD5 or SHA-1 signatures from a
CA.  Browsers cannot use Ed25519 or RSA-PSS certificates.  Browsers and
service-identity ignore the Common Name.  Python 3.13 rejects an X.509 v1
self-signed certificate as a trust anchor.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, PublicKeyAlgorithmOID

from mrs.tls.pem import PemBlock, PemError, normalizeText, readBlocks

Field = Literal["key", "certificate", "chain", "passphrase"]
Severity = Literal["error", "warning"]

MIN_RSA_BITS = 2048
EXPIRY_WARNING_DAYS = 30
CLOCK_SKEW = timedelta(minutes=5)
"""
How far in the future a certificate's start may lie and be accepted with a
warning, for a CA or a machine whose clock is slightly ahead.
"""
SUPPORTED_CURVES = ("secp256r1", "secp384r1")
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

_PRIVATE_KEY_LABELS = (
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "DSA PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
)
_CERTIFICATE_LABELS = ("CERTIFICATE", "X509 CERTIFICATE")
_REQUEST_LABELS = ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
# Blocks that tools print beside a key and that carry nothing we need.
_IGNORED_LABELS = ("EC PARAMETERS", "DH PARAMETERS")

# The rsassaPss OID 1.2.840.113549.1.1.10 in DER: PKCS#8 keys made with
# "openssl genpkey -algorithm RSA-PSS" carry it, and cryptography loads
# them as ordinary RSA keys.
_RSA_PSS_OID_DER = bytes.fromhex("06092a864886f70d01010a")

_WEAK_HASHES = {"md5": "MD5", "sha1": "SHA-1"}


@dataclass(frozen=True)
class Problem:
    """
    One finding about a key and certificate pair.

    @ivar field: the input it concerns: C{"key"}, C{"certificate"},
        C{"chain"} or C{"passphrase"}.
    @ivar severity: C{"error"} blocks installing, C{"warning"} does not.
    @ivar message: what is wrong and how to fix it.
    """

    field: Field
    severity: Severity
    message: str


@dataclass(frozen=True)
class CertificateInfo:
    """
    Details that identify a certificate to an operator.

    @ivar subject: the subject in RFC 4514 form, such as C{"CN=mrs.example.test"}.
    @ivar sans: subjectAltName entries as C{"DNS:name"} or C{"IP:address"}.
    @ivar sha256: the SHA-256 fingerprint of the DER certificate, as
        upper-case hex pairs joined by colons (what clients pin).
    @ivar keyDescription: such as C{"RSA 2048 bit"} or C{"EC P-256"}.
    """

    subject: str
    issuer: str
    sans: tuple[str, ...]
    notBefore: datetime
    notAfter: datetime
    sha256: str
    keyDescription: str
    selfSigned: bool
    version: int
    serialNumber: int
    signatureHash: str | None
    commonName: str | None

    def daysToExpiry(self, now: datetime) -> float:
        """
        Days from C{now} until the certificate expires; negative once expired.
        """
        return (self.notAfter - now).total_seconds() / 86400


@dataclass
class Report:
    """
    The result of L{checkPair}.

    @ivar problems: errors and warnings, in the order they were found.
    @ivar info: the server certificate's details, when one was found.
    @ivar chainInfo: the intermediate certificates the server will send.
    @ivar privateKey: the decrypted private key, when it was read.
    @ivar certificates: the server certificate followed by the
        intermediates, in the order the server sends them.
    @ivar keyMatches: whether the private key belongs to a certificate.
    """

    problems: list[Problem] = field(default_factory=list)
    info: CertificateInfo | None = None
    chainInfo: list[CertificateInfo] = field(default_factory=list)
    privateKey: CertificateIssuerPrivateKeyTypes | None = field(default=None, repr=False)
    certificates: list[x509.Certificate] = field(default_factory=list, repr=False)
    keyMatches: bool = False

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def accepted(self) -> bool:
        """
        Whether the pair may be installed: it has a key, a certificate and
        no errors.
        """
        return not self.errors and self.keyMatches

    def error(self, where: Field, message: str) -> None:
        self.problems.append(Problem(where, "error", message))

    def warn(self, where: Field, message: str) -> None:
        self.problems.append(Problem(where, "warning", message))

    def keyPem(self) -> bytes:
        """
        The private key as unencrypted PKCS#8 PEM, for the key file.
        """
        assert self.privateKey is not None
        return self.privateKey.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def certificatePem(self) -> bytes:
        """
        The server certificate and its intermediates as PEM, leaf first.
        """
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certificates)


def fingerprint(certificate: x509.Certificate) -> str:
    """
    Return the SHA-256 fingerprint as upper-case hex pairs joined by colons,
    as C{openssl x509 -fingerprint -sha256} prints it.
    """
    return ":".join(f"{b:02X}" for b in certificate.fingerprint(hashes.SHA256()))


def describeKey(key: object) -> str:
    """
    Describe a public or private key, such as C{"RSA 2048 bit"} or C{"EC P-256"}.
    """
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"RSA {key.key_size} bit"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"EC {_CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "Ed25519"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "Ed448"
    return type(key).__name__


def certificateInfo(certificate: x509.Certificate) -> CertificateInfo:
    """
    Summarise C{certificate} for display and for the audit log.
    """
    hashAlgorithm = certificate.signature_hash_algorithm
    commonNames = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    commonName = commonNames[0].value if commonNames else None
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        sans=tuple(_subjectAltNames(certificate)),
        notBefore=certificate.not_valid_before_utc,
        notAfter=certificate.not_valid_after_utc,
        sha256=fingerprint(certificate),
        keyDescription=describeKey(certificate.public_key()),
        selfSigned=_isSelfSigned(certificate),
        version=certificate.version.value + 1,
        serialNumber=certificate.serial_number,
        signatureHash=hashAlgorithm.name if hashAlgorithm is not None else None,
        commonName=str(commonName) if commonName is not None else None,
    )


def checkPair(
    keyPem: bytes,
    certPem: bytes,
    chainPem: bytes = b"",
    passphrase: bytes | str | None = None,
    serverNames: Sequence[str] = (),
    now: datetime | None = None,
) -> Report:
    """
    Check a private key and certificate chain as an operator pasted them.

    @param keyPem: the private key input.
    @param certPem: the certificate input: the server certificate, possibly
        followed or preceded by intermediates.
    @param chainPem: an optional separate input with intermediates.
    @param passphrase: the key's passphrase, for an encrypted key.
    @param serverNames: the host names and IP addresses clients use to reach
        this server; a certificate that covers none of them is an error.
    @param now: the current time (timezone-aware UTC) for the validity
        checks; required.
    @return: the report; the pair may be installed when
        L{Report.accepted} is true.
    """
    assert now is not None, "pass the current time from reactor.seconds()"
    report = Report()
    keyBlocks = _read(report, keyPem, "key", "private key")
    certBlocks = _read(report, certPem, "certificate", "certificate")
    chainBlocks = _read(report, chainPem, "chain", "chain") if chainPem.strip() else []

    if keyBlocks is not None and certBlocks is not None:
        sameText = bool(keyBlocks) and normalizeText(keyPem) == normalizeText(certPem)
        _checkKeyInput(report, keyBlocks, certBlocks, passphrase, sameText)
        certificates = _checkCertificateInput(report, certBlocks, "certificate", sameText)
    else:
        if keyBlocks is not None:
            _checkKeyInput(report, keyBlocks, [], passphrase, False)
        certificates = []
        if certBlocks is not None:
            certificates = _checkCertificateInput(report, certBlocks, "certificate", False)
    if chainBlocks is not None:
        certificates += _checkCertificateInput(report, chainBlocks, "chain", False)

    certificates = _dropDuplicates(report, certificates)
    if not certificates:
        return report
    leaf = _findLeaf(report, certificates)
    chain = _buildChain(report, leaf, [c for c in certificates if c is not leaf])
    report.certificates = [leaf] + chain
    report.info = certificateInfo(leaf)
    report.chainInfo = [certificateInfo(c) for c in chain]
    _checkLeaf(report, leaf, serverNames, now)
    for certificate in chain:
        _checkIntermediate(report, certificate, now)
    return report


def _read(report: Report, data: bytes, where: Field, inputName: str) -> list[PemBlock] | None:
    try:
        blocks = readBlocks(data, inputName)
    except PemError as e:
        report.error(where, str(e))
        return None
    return [b for b in blocks if b.label not in _IGNORED_LABELS]


def _labels(blocks: Sequence[PemBlock]) -> set[str]:
    return {b.label for b in blocks}


def _checkKeyInput(
    report: Report,
    blocks: list[PemBlock],
    certBlocks: list[PemBlock],
    passphrase: bytes | str | None,
    sameText: bool,
) -> None:
    if not blocks:
        report.error(
            "key",
            "The private key input is empty. Paste the private key file (such as key.pem "
            "or server.key), including its '-----BEGIN PRIVATE KEY-----' and "
            "'-----END PRIVATE KEY-----' lines.",
        )
        return
    keys = [b for b in blocks if b.label in _PRIVATE_KEY_LABELS]
    labels = _labels(blocks)
    if not keys:
        _explainMissingKey(report, labels, _labels(certBlocks))
        return
    if len({b.der for b in keys}) > 1:
        report.error(
            "key",
            f"The private key input contains {len(keys)} different private keys. Paste "
            f"only the key that belongs to the server certificate.",
        )
        return
    if not sameText and labels & set(_CERTIFICATE_LABELS):
        report.warn(
            "key",
            "The private key input also contains certificates; they were ignored. Paste "
            "certificates into the certificate input.",
        )
    report.privateKey = _loadPrivateKey(report, keys[0], passphrase)


def _explainMissingKey(report: Report, labels: set[str], certLabels: set[str]) -> None:
    if labels & set(_CERTIFICATE_LABELS) and certLabels & set(_PRIVATE_KEY_LABELS):
        report.error(
            "key",
            "The private key input contains a certificate and the certificate input "
            "contains a private key: the two inputs appear swapped. Paste the private key "
            "into the private key input and the certificate into the certificate input.",
        )
    elif labels & set(_CERTIFICATE_LABELS):
        report.error(
            "key",
            "The private key input contains a certificate ('BEGIN CERTIFICATE'), not a "
            "private key. Paste the private key file (such as key.pem or server.key, "
            "starting with '-----BEGIN PRIVATE KEY-----' or "
            "'-----BEGIN RSA PRIVATE KEY-----').",
        )
    elif labels & {"PUBLIC KEY", "RSA PUBLIC KEY"}:
        report.error(
            "key",
            "The private key input contains a PUBLIC key ('BEGIN PUBLIC KEY'), which the "
            "server cannot use. Paste the private key file (such as key.pem, starting with "
            "'-----BEGIN PRIVATE KEY-----' or '-----BEGIN RSA PRIVATE KEY-----').",
        )
    elif labels & set(_REQUEST_LABELS):
        report.error(
            "key",
            "The private key input contains a certificate signing request ('BEGIN "
            "CERTIFICATE REQUEST'), not a private key. Paste the private key file that was "
            "used to make the request (such as key.pem).",
        )
    else:
        found = ", ".join(sorted(labels))
        report.error(
            "key",
            f"The private key input contains no private key (it contains: {found}). Paste "
            f"the private key file, starting with '-----BEGIN PRIVATE KEY-----' or "
            f"'-----BEGIN RSA PRIVATE KEY-----'.",
        )


def _loadPrivateKey(
    report: Report, block: PemBlock, passphrase: bytes | str | None
) -> CertificateIssuerPrivateKeyTypes | None:
    if block.label == "OPENSSH PRIVATE KEY":
        report.error(
            "key",
            "The private key is an OpenSSH key (from ssh-keygen), which TLS cannot use. "
            "Make a TLS key with: openssl genrsa -out key.pem 2048 (or mrs tls generate).",
        )
        return None
    encrypted = block.label == "ENCRYPTED PRIVATE KEY" or "ENCRYPTED" in block.headers.get(
        "Proc-Type", ""
    )
    if encrypted and not passphrase:
        report.error(
            "passphrase",
            f"The private key is protected by a passphrase ('BEGIN {block.label}' "
            f"{'with Proc-Type: 4,ENCRYPTED' if block.headers else ''}".rstrip()
            + "), and the server cannot ask for it at start. Enter the passphrase so the "
            "server stores the key without it, or remove the passphrase yourself with: "
            "openssl pkey -in key.pem -out key-plain.pem (it asks for the passphrase) and "
            "paste key-plain.pem.",
        )
        return None
    password = None
    if encrypted and passphrase:
        password = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    try:
        key: PrivateKeyTypes = serialization.load_pem_private_key(block.toPem(), password=password)
    except TypeError:
        # A key whose headers did not announce the encryption.
        report.error(
            "passphrase",
            "The private key is protected by a passphrase; enter it, or remove it with: "
            "openssl pkey -in key.pem -out key-plain.pem.",
        )
        return None
    except ValueError as e:
        if encrypted:
            report.error(
                "passphrase",
                "The passphrase does not decrypt the private key. Enter the passphrase that "
                "was set when the key was made, or remove it with: openssl pkey -in key.pem "
                "-out key-plain.pem.",
            )
        else:
            report.error(
                "key",
                f"The private key ('BEGIN {block.label}') is damaged and cannot be read "
                f"({_firstLine(e)}). Copy the whole key file again.",
            )
        return None
    except UnsupportedAlgorithm:
        report.error(
            "key",
            "The private key uses an algorithm this server does not support. Use an RSA "
            "key of 2048 bits or more (openssl genrsa -out key.pem 2048) or an EC P-256 key.",
        )
        return None

    if not _checkKeyType(report, key, block):
        return None
    return key  # type: ignore[return-value]


def _checkKeyType(report: Report, key: PrivateKeyTypes, block: PemBlock) -> bool:
    if isinstance(key, rsa.RSAPrivateKey):
        if _RSA_PSS_OID_DER in block.der[:32]:
            report.error(
                "key",
                "The key is an RSA-PSS-only key (algorithm rsassaPss, as made by openssl "
                "genpkey -algorithm RSA-PSS); most browsers and many TLS clients cannot use "
                "its certificates. Use a plain RSA key (openssl genrsa -out key.pem 2048) or "
                "an EC P-256 key.",
            )
            return False
        if key.key_size < MIN_RSA_BITS:
            report.error(
                "key",
                f"The RSA key is {key.key_size} bits; TLS libraries at their default "
                f"security level refuse keys under {MIN_RSA_BITS} bits ('ee key too small'). "
                f"Make a 2048-bit or larger key (openssl genrsa -out key.pem 2048) and a new "
                f"certificate for it.",
            )
            return False
        return True
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in SUPPORTED_CURVES:
            report.error(
                "key",
                f"The EC key uses the curve {key.curve.name}; browsers and common TLS "
                f"clients support only P-256 and P-384 for certificates. Make a P-256 key: "
                f"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem.",
            )
            return False
        return True
    if isinstance(key, ed25519.Ed25519PrivateKey):
        report.error(
            "key",
            "The key is an Ed25519 key. Ed25519 certificates work between OpenSSL-based "
            "clients over TLS 1.3, but web browsers cannot use them, so the HTTPS admin site "
            "would become unreachable from a browser. Use an RSA key of 2048 bits or more "
            "or an EC P-256 key.",
        )
        return False
    report.error(
        "key",
        f"The key is a {describeKey(key)} key, which TLS server certificates in common "
        f"clients do not support. Use an RSA key of 2048 bits or more (openssl genrsa -out "
        f"key.pem 2048) or an EC P-256 key.",
    )
    return False


def _checkCertificateInput(
    report: Report, blocks: list[PemBlock], where: Field, sameText: bool
) -> list[x509.Certificate]:
    what = "certificate" if where == "certificate" else "chain"
    if not blocks:
        if where == "certificate":
            report.error(
                "certificate",
                "The certificate input is empty. Paste the server certificate file (such as "
                "cert.pem or server.crt), including its '-----BEGIN CERTIFICATE-----' and "
                "'-----END CERTIFICATE-----' lines, followed by any intermediate "
                "certificates.",
            )
        return []
    labels = _labels(blocks)
    if labels & set(_PRIVATE_KEY_LABELS) and not sameText:
        report.error(
            where,
            f"The {what} input also contains a private key block. Remove it from there "
            f"(certificate text may be shown and exported, the key must not) and paste the "
            f"key only into the private key input.",
        )
    if labels & set(_REQUEST_LABELS):
        report.error(
            where,
            f"The {what} input contains a certificate signing request ('BEGIN CERTIFICATE "
            f"REQUEST'), not a certificate. Sign it first (openssl x509 -req -in server.csr "
            f"-signkey key.pem -copy_extensions copy -days 365 -out server.crt) or send it "
            f"to your CA, then paste the certificate (server.crt).",
        )
    if "PKCS7" in labels:
        report.error(
            where,
            f"The {what} input is a PKCS#7 bundle ('BEGIN PKCS7', often a .p7b file). "
            f"Convert it with: openssl pkcs7 -print_certs -in cert.p7b -out cert.pem, then "
            f"paste cert.pem.",
        )
    if "TRUSTED CERTIFICATE" in labels:
        report.error(
            where,
            f"The {what} input contains an OpenSSL 'TRUSTED CERTIFICATE' block. Convert it "
            f"to a plain certificate with: openssl x509 -in cert.pem -out plain.pem, then "
            f"paste plain.pem.",
        )
    certificates = []
    for block in blocks:
        if block.label not in _CERTIFICATE_LABELS:
            continue
        try:
            certificates.append(x509.load_der_x509_certificate(block.der))
        except ValueError as e:
            report.error(
                where,
                f"A certificate in the {what} input is damaged and cannot be read "
                f"({_firstLine(e)}). Copy the whole certificate file again.",
            )
    if not certificates and not report.errors:
        if labels & {"PUBLIC KEY", "RSA PUBLIC KEY"}:
            problem = "a public key"
        elif labels & set(_PRIVATE_KEY_LABELS):
            problem = "only a private key"
        else:
            problem = "no certificate (it contains: " + ", ".join(sorted(labels)) + ")"
        report.error(
            where,
            f"The {what} input contains {problem}. Paste the server certificate, starting "
            f"with '-----BEGIN CERTIFICATE-----'.",
        )
    return certificates


def _dropDuplicates(report: Report, certificates: list[x509.Certificate]) -> list[x509.Certificate]:
    unique: list[x509.Certificate] = []
    for certificate in certificates:
        if certificate in unique:
            report.warn(
                "certificate",
                f"The certificate '{_name(certificate)}' was pasted more than once; the "
                f"duplicate was dropped.",
            )
        else:
            unique.append(certificate)
    return unique


def _findLeaf(report: Report, certificates: list[x509.Certificate]) -> x509.Certificate:
    """
    Find the server certificate: the one whose public key matches the
    private key, or, without a usable key, the one that issued no other.
    """
    key = report.privateKey
    if key is not None:
        publicKey = _spki(key.public_key())
        for index, certificate in enumerate(certificates):
            if _spki(certificate.public_key()) == publicKey:
                report.keyMatches = True
                if index > 0:
                    report.warn(
                        "certificate",
                        f"The certificates were in the wrong order: the server certificate "
                        f"('{_name(certificate)}', the one whose public key matches the "
                        f"private key) came after {index} other certificate(s). It was moved "
                        f"to the front, because the server must send it first; a plain "
                        f"OpenSSL loader reports this order only as 'key values mismatch'.",
                    )
                return certificate
        report.error(
            "key",
            "The private key does not belong to the certificate: their public keys differ. "
            "Paste the key that was used to make this certificate's CSR. To compare them, "
            "these two commands must print the same hash: openssl x509 -noout -pubkey -in "
            "cert.pem | openssl sha256 and openssl pkey -pubout -in key.pem | openssl sha256.",
        )
    for certificate in certificates:
        if not any(
            other is not certificate and other.issuer == certificate.subject
            for other in certificates
        ):
            return certificate
    return certificates[0]


def _spki(publicKey: object) -> bytes:
    return publicKey.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _issued(issuer: x509.Certificate, subject: x509.Certificate) -> bool:
    if issuer.subject != subject.issuer:
        return False
    try:
        subject.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        # Names match, but the signature does not (or uses a hash that
        # cryptography no longer verifies, such as MD5): treat as issued
        # only when the hash is the reason, so the weak-hash check reports it.
        hashAlgorithm = subject.signature_hash_algorithm
        return hashAlgorithm is not None and hashAlgorithm.name in _WEAK_HASHES
    return True


def _isSelfSigned(certificate: x509.Certificate) -> bool:
    return _issued(certificate, certificate)


def _buildChain(
    report: Report, leaf: x509.Certificate, others: list[x509.Certificate]
) -> list[x509.Certificate]:
    chain: list[x509.Certificate] = []
    current = leaf
    remaining = list(others)
    while not _isSelfSigned(current):
        issuer = next((c for c in remaining if _issued(c, current)), None)
        if issuer is None:
            break
        chain.append(issuer)
        remaining.remove(issuer)
        current = issuer

    for certificate in remaining:
        report.error(
            "certificate",
            f"The certificate '{_name(certificate)}' did not issue the server certificate "
            f"or any certificate of its chain (the server certificate's issuer is "
            f"'{_issuerName(leaf)}'). Remove it and paste the intermediate certificate your "
            f"CA supplied for this certificate.",
        )
    if chain and _isSelfSigned(chain[-1]):
        root = chain.pop()
        report.warn(
            "chain",
            f"The root certificate '{_name(root)}' was dropped from the chain the server "
            f"sends: clients must already trust it, so sending it only adds bytes.",
        )
    elif not chain and not _isSelfSigned(current) and not remaining:
        report.warn(
            "chain",
            f"The certificate '{_name(current)}' was issued by '{_issuerName(current)}', but "
            f"that CA certificate was not pasted. Clients that trust only the root CA will "
            f"fail with 'unable to get local issuer certificate' unless "
            f"'{_issuerName(current)}' is itself a root they trust. Paste the intermediate "
            f"certificate below the server certificate.",
        )
    return chain


def _checkLeaf(
    report: Report, leaf: x509.Certificate, serverNames: Sequence[str], now: datetime
) -> None:
    selfSigned = _isSelfSigned(leaf)
    if leaf.public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS:
        if not any("RSA-PSS" in p.message for p in report.problems):
            report.error(
                "certificate",
                "The certificate's key is an RSA-PSS-only key (algorithm rsassaPss); most "
                "browsers and many TLS clients cannot use it. Use a plain RSA key (openssl "
                "genrsa -out key.pem 2048) or an EC P-256 key.",
            )
    _checkSignatureHash(report, leaf, "certificate", selfSigned)
    _checkValidity(report, leaf, "certificate", now)
    _checkExtensions(report, leaf)
    if leaf.version == x509.Version.v1:
        report.warn(
            "certificate",
            "The certificate is X.509 version 1, which has no extensions (no "
            "subjectAltName, no CA:FALSE). Python 3.13 and later clients refuse a v1 "
            "self-signed certificate as a trust anchor ('invalid CA certificate'). Re-make "
            "it as version 3 with mrs tls generate, or with the openssl req -x509 command "
            "given for the missing subjectAltName (openssl x509 -req makes v1 certificates "
            "unless given extensions).",
        )
    if selfSigned:
        report.warn(
            "certificate",
            f"The certificate is self-signed: clients trust it only when told to. Install "
            f"it in the trust store of each machine that opens the admin page, and give "
            f"clients --ca-file with this certificate or --fingerprint "
            f"{fingerprint(leaf)}.",
        )
    _checkNames(report, leaf, serverNames)


def _checkIntermediate(report: Report, certificate: x509.Certificate, now: datetime) -> None:
    _checkSignatureHash(report, certificate, "chain", selfSigned=False)
    _checkValidity(report, certificate, "chain", now)


def _checkSignatureHash(
    report: Report, certificate: x509.Certificate, where: Field, selfSigned: bool
) -> None:
    hashAlgorithm = certificate.signature_hash_algorithm
    if hashAlgorithm is None or hashAlgorithm.name not in _WEAK_HASHES:
        return
    hashName = _WEAK_HASHES[hashAlgorithm.name]
    if selfSigned:
        report.warn(
            where,
            f"The self-signed certificate's own signature uses {hashName}. TLS clients do "
            f"not check the signature of a certificate they trust directly, so it works "
            f"once clients trust it, but re-make it with SHA-256 (remove -{hashAlgorithm.name}"
            f" or default_md = {hashAlgorithm.name} from the OpenSSL command or openssl.cnf).",
        )
        return
    report.error(
        where,
        f"The certificate '{_name(certificate)}' is signed with {hashName} by "
        f"'{_issuerName(certificate)}'; TLS libraries at their default security level refuse "
        f"{hashName} signatures ('ca md too weak') and clients will not trust it. Have it "
        f"re-issued with SHA-256.",
    )


def _checkValidity(
    report: Report, certificate: x509.Certificate, where: Field, now: datetime
) -> None:
    notBefore = certificate.not_valid_before_utc
    notAfter = certificate.not_valid_after_utc
    validity = f"valid {_date(notBefore)} to {_date(notAfter)}"
    clock = f"the server clock reads {_date(now)}"
    if now < notBefore <= now + CLOCK_SKEW:
        report.warn(
            where,
            f"The certificate '{_name(certificate)}' becomes valid only at "
            f"{notBefore:%H:%M:%S} UTC, {int((notBefore - now).total_seconds())} seconds from "
            f"now ({clock[4:]}); clients refuse it until then. Check the clocks of this server "
            f"and of the machine that made the certificate.",
        )
    elif now < notBefore:
        report.error(
            where,
            f"The certificate '{_name(certificate)}' is not valid yet ({validity}; {clock}). "
            f"Check the server clock and the dates used when making the certificate.",
        )
    elif now > notAfter:
        report.error(
            where,
            f"The certificate '{_name(certificate)}' has expired ({validity}; {clock}). Make "
            f"or buy a new one, and check the server clock.",
        )
    elif notAfter - now <= timedelta(days=EXPIRY_WARNING_DAYS):
        days = int((notAfter - now).total_seconds() // 86400)
        report.warn(
            where,
            f"The certificate '{_name(certificate)}' expires in {days} days (on "
            f"{_date(notAfter)}). Renew it before then. OpenSSL makes certificates valid for "
            f"30 days unless given -days, for example -days 365.",
        )


def _checkExtensions(report: Report, leaf: x509.Certificate) -> None:
    try:
        constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and constraints.ca:
        if _isSelfSigned(leaf):
            fix = (
                "Re-make it with -addext 'basicConstraints=critical,CA:FALSE': openssl req "
                "-x509 marks certificates CA:TRUE unless told otherwise (or use mrs tls "
                "generate, or -config with the openssl.cnf shipped with this server)."
            )
        else:
            fix = (
                "Paste the certificate issued to this server, or have it re-issued with "
                "basicConstraints CA:FALSE and extendedKeyUsage serverAuth."
            )
        report.error(
            "certificate",
            f"The server certificate '{_name(leaf)}' is a CA certificate (basicConstraints "
            f"CA:TRUE), not a server certificate. {fix}",
        )
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    allowed = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    if not allowed & set(usages):
        report.error(
            "certificate",
            "The certificate's extendedKeyUsage does not include TLS server authentication "
            "(serverAuth), so clients refuse it ('unsupported certificate purpose'). Have it "
            "re-issued with extendedKeyUsage=serverAuth.",
        )


def _checkNames(report: Report, leaf: x509.Certificate, serverNames: Sequence[str]) -> None:
    sans = _subjectAltNames(leaf)
    commonNames = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    firstName = serverNames[0] if serverNames else "NAME"
    if not sans:
        shown = f"'{commonNames[0]}'" if commonNames else "(none)"
        report.warn(
            "certificate",
            f"The certificate has no subjectAltName; it names the host only in its Common "
            f"Name {shown}. Modern clients, browsers and service-identity ignore the Common "
            f"Name, so host-name checks fail for this certificate. Re-make it with a "
            f"subjectAltName: openssl req -x509 -new -key key.pem -out cert.pem -days 365 "
            f"-subj '/CN={firstName}' -addext 'subjectAltName={_sanOption(serverNames)}' "
            f"-addext 'basicConstraints=critical,CA:FALSE'. "
            f"When signing a CSR with openssl x509 -req, add -copy_extensions copy, or the "
            f"subjectAltName requested in the CSR is dropped.",
        )
    if not serverNames:
        return
    covered = [n for n in serverNames if nameCovered(leaf, n)]
    uncovered = [n for n in serverNames if n not in covered]
    names = ", ".join(s.split(":", 1)[1] for s in sans) if sans else ", ".join(commonNames)
    if not covered:
        report.error(
            "certificate",
            f"The certificate is for {names or '(no name)'}, not for this server's host "
            f"name{'s' if len(serverNames) > 1 else ''} {', '.join(serverNames)}; clients "
            f"will fail host-name checks. Make a certificate whose subjectAltName contains "
            f"{firstName}, or, if clients really reach this server as "
            f"{names or 'another name'}, add that name to server_names in the configuration.",
        )
    elif uncovered:
        report.warn(
            "certificate",
            f"The certificate does not cover the configured server name"
            f"{'s' if len(uncovered) > 1 else ''} {', '.join(uncovered)} (it covers "
            f"{names}); clients that use {'those names' if len(uncovered) > 1 else 'that name'}"
            f" will fail host-name checks. Add {_sanOption(uncovered)} to the subjectAltName.",
        )


def _sanOption(names: Sequence[str]) -> str:
    if not names:
        return "DNS:NAME"
    return ",".join(("IP:" if _isAddress(n) else "DNS:") + n for n in names)


def _isAddress(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def nameCovered(certificate: x509.Certificate, name: str) -> bool:
    """
    Whether C{certificate} covers the host name or IP address C{name}: by a
    subjectAltName entry (a wildcard matches one leftmost label), or, for a
    certificate without subjectAltName, by its Common Name, which only
    legacy clients read.
    """
    try:
        sanExtension = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        commonNames = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return any(_dnsMatches(str(a.value), name) for a in commonNames)
    if _isAddress(name):
        address = ipaddress.ip_address(name)
        return address in sanExtension.get_values_for_type(x509.IPAddress)
    return any(_dnsMatches(p, name) for p in sanExtension.get_values_for_type(x509.DNSName))


def _dnsMatches(pattern: str, name: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    name = name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def _subjectAltNames(certificate: x509.Certificate) -> list[str]:
    try:
        extension = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        return []
    except ValueError:
        return []
    entries = [f"DNS:{n}" for n in extension.get_values_for_type(x509.DNSName)]
    entries += [f"IP:{a}" for a in extension.get_values_for_type(x509.IPAddress)]
    return entries


def _name(certificate: x509.Certificate) -> str:
    commonNames = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if commonNames:
        return str(commonNames[0].value)
    return certificate.subject.rfc4514_string() or "(empty subject)"


def _issuerName(certificate: x509.Certificate) -> str:
    commonNames = certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    if commonNames:
        return str(commonNames[0].value)
    return certificate.issuer.rfc4514_string() or "(empty issuer)"


def _date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _firstLine(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
