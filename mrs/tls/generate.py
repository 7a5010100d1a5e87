"""
Make private keys, certificate signing requests and self-signed
certificates, for operators who do not use the OpenSSL command line.

Everything here is synchronous; RSA key generation takes from tens of
milliseconds to seconds, so callers on the reactor thread run it in a thread.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384")
DEFAULT_VALIDITY_DAYS = 365
"""
Validity of generated self-signed certificates.  Mozilla's server
configuration guidelines, as sslyze checks them, allow at most 366 days;
the server logs a warning daily from 30 days before expiry.
"""

GeneratedKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class GenerateError(ValueError):
    """
    A key type or subject field is invalid; the message names it and what
    is accepted.
    """


@dataclass(frozen=True)
class SubjectFields:
    """
    Distinguished name fields for a CSR or a self-signed certificate.
    C{commonName} defaults to the first server name.
    """

    commonName: str | None = None
    organization: str | None = None
    organizationalUnit: str | None = None
    locality: str | None = None
    state: str | None = None
    country: str | None = None


def generatePrivateKey(keyType: str) -> GeneratedKey:
    """
    Generate a private key of C{keyType}, one of L{KEY_TYPES}.

    @raise GenerateError: for another key type.
    """
    if keyType.startswith("rsa") and keyType in KEY_TYPES:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(keyType[3:]))
    if keyType == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if keyType == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise GenerateError(
        f"key type {keyType!r} is not supported; use one of: {', '.join(KEY_TYPES)}"
    )


def subjectName(fields: SubjectFields | None, serverNames: Sequence[str]) -> x509.Name:
    """
    Build the subject name; the Common Name defaults to the first server name.

    @raise GenerateError: for a country that is not two letters, or when
        there is neither a Common Name nor a server name.
    """
    fields = fields or SubjectFields()
    commonName = fields.commonName or (serverNames[0] if serverNames else None)
    if not commonName:
        raise GenerateError("a Common Name or at least one server name is required")
    attributes = []
    if fields.country:
        if len(fields.country) != 2 or not fields.country.isalpha():
            raise GenerateError(
                f"country {fields.country!r} is invalid; use a two-letter code such as SI or DE"
            )
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, fields.country.upper()))
    for oid, value in (
        (NameOID.STATE_OR_PROVINCE_NAME, fields.state),
        (NameOID.LOCALITY_NAME, fields.locality),
        (NameOID.ORGANIZATION_NAME, fields.organization),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, fields.organizationalUnit),
    ):
        if value:
            attributes.append(x509.NameAttribute(oid, value))
    if len(commonName) > 64:
        raise GenerateError(
            f"Common Name {commonName!r} is longer than 64 characters; use a shorter name"
        )
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, commonName))
    return x509.Name(attributes)


def subjectAltName(serverNames: Sequence[str]) -> x509.SubjectAlternativeName:
    """
    Build a subjectAltName with a DNS entry per host name and an IP entry
    per address.

    @raise GenerateError: when C{serverNames} is empty.
    """
    if not serverNames:
        raise GenerateError("no server names are configured; set server_names in the configuration")
    entries: list[x509.GeneralName] = []
    for name in serverNames:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _keyUsage(key: GeneratedKey) -> x509.KeyUsage:
    # RSA key exchange (TLS 1.2 without ECDHE) needs keyEncipherment; EC keys
    # only sign.
    return x509.KeyUsage(
        digital_signature=True,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        content_commitment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def selfSignedCertificate(
    key: GeneratedKey,
    serverNames: Sequence[str],
    now: datetime,
    subject: SubjectFields | None = None,
    days: int = DEFAULT_VALIDITY_DAYS,
) -> x509.Certificate:
    """
    Make an X.509 v3 self-signed server certificate, signed with SHA-256,
    with subjectAltName for C{serverNames}, CA:FALSE, keyUsage and the
    serverAuth extended key usage.  It is valid from five minutes before
    C{now}, to allow for clients whose clocks are slightly behind.
    """
    name = subjectName(subject, serverNames)
    publicKey = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(publicKey)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(subjectAltName(serverNames), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_keyUsage(key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(publicKey), critical=False)
        .sign(key, hashes.SHA256())
    )


def certificateRequest(
    key: GeneratedKey, serverNames: Sequence[str], subject: SubjectFields | None = None
) -> x509.CertificateSigningRequest:
    """
    Make a SHA-256 CSR asking for subjectAltName, keyUsage and serverAuth,
    to send to a CA.
    """
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subjectName(subject, serverNames))
        .add_extension(subjectAltName(serverNames), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_keyUsage(key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
