"""
Read the PEM text that operators paste or upload.

Operators copy keys and certificates out of e-mails, chat tools, Windows
editors and C{openssl x509 -text} output.  L{readBlocks} accepts what those
tools do to PEM text (CRLF line endings, a UTF-8 byte order mark, blank
lines and spaces around the blocks, text between the blocks, a base64 body
on one line or with spaces for line breaks, no final newline) and raises
L{PemError} with the cause and the fix for what it cannot read: binary DER
or PKCS#12 data, typographic dashes, a bare base64 body, a block cut off.

Nothing here decides whether a block belongs in the key or the certificate
input; L{mrs.tls.validate} does that.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

MAX_INPUT_BYTES = 65536
"""
Largest key, certificate or chain input accepted, in bytes.  A server key
and a chain of a few certificates take under 16 KiB.
"""

_UTF8_BOM = b"\xef\xbb\xbf"

_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----",
    re.DOTALL,
)
_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_HEADER = re.compile(r"([A-Za-z-]+):\s*([^\s]+)")
_TYPOGRAPHIC_DASHES = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]{3,}\\s*BEGIN")
_BASE64_ONLY = re.compile(r"^[A-Za-z0-9+/=\s]+$")

# DER of the OID 1.2.840.113549.1.7.1 (PKCS#7 data), which starts the
# authSafe of every PKCS#12 file, and the PFX version 3 that precedes it.
_PKCS7_DATA_OID = bytes.fromhex("06092a864886f70d010701")
_PKCS12_VERSION = bytes.fromhex("020103")


class PemError(ValueError):
    """
    The input cannot be read as PEM.  The message names the cause and the fix.
    """


@dataclass(frozen=True)
class PemBlock:
    """
    One C{-----BEGIN label-----} block: its label, RFC 1421 headers (only
    traditional encrypted keys have them) and decoded DER bytes.
    """

    label: str
    der: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def toPem(self) -> bytes:
        """
        Encode the block again as canonical PEM: LF line endings, 64-column
        base64 and the headers, if any, followed by a blank line.
        """
        lines = [f"-----BEGIN {self.label}-----"]
        if self.headers:
            lines += [f"{name}: {value}" for name, value in self.headers.items()]
            lines.append("")
        body = base64.b64encode(self.der).decode("ascii")
        lines += [body[i : i + 64] for i in range(0, len(body), 64)]
        lines.append(f"-----END {self.label}-----")
        return ("\n".join(lines) + "\n").encode("ascii")


def normalizeText(data: bytes) -> bytes:
    """
    Remove a UTF-8 byte order mark and surrounding whitespace and turn CRLF
    and CR line endings into LF.
    """
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").strip()


def readBlocks(data: bytes, inputName: str) -> list[PemBlock]:
    """
    Split pasted or uploaded text into its PEM blocks.

    @param data: the raw input, as bytes.
    @param inputName: the input's name for messages, such as C{"private key"} or
        C{"certificate"}.
    @return: the blocks in input order; an empty list for an input that is
        empty or only whitespace.
    @raise PemError: for input over L{MAX_INPUT_BYTES}, binary data, a
        block whose dashes were replaced, a base64 body without BEGIN and
        END lines, a block without its END line, damaged base64 or DER, or
        text without any PEM block.
    """
    if len(data) > MAX_INPUT_BYTES:
        raise PemError(
            f"The {inputName} input is {len(data)} bytes, over the limit of {MAX_INPUT_BYTES} "
            f"bytes. Paste only the {inputName} file; a key and a chain of a few certificates "
            f"take well under 16 KiB."
        )
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    # Binary input is recognised before whitespace is stripped, which would
    # damage DER data.
    if data.strip() and _decodeText(data) is None:
        raise PemError(_describeBinary(data, inputName))
    text = normalizeText(data).decode("utf-8")
    if not text:
        return []

    blocks: list[PemBlock] = []
    for match in _BLOCK.finditer(text):
        blocks.append(_decodeBlock(match.group(1), match.group(2), inputName))
    rest = _BLOCK.sub("", text)
    unfinished = _BEGIN.search(rest)
    if unfinished:
        label = unfinished.group(1)
        raise PemError(
            f"The {inputName} text is cut off: the '-----BEGIN {label}-----' line has no "
            f"matching '-----END {label}-----' line, so data is missing. Copy the whole "
            f"file again, from the BEGIN line to the END line."
        )
    if blocks:
        return blocks

    if _TYPOGRAPHIC_DASHES.search(text):
        raise PemError(
            f"The dashes in the {inputName}'s BEGIN and END lines were replaced by typographic "
            f"dashes (such as U+2013), as word processors and some mail clients do, so it "
            f"is no longer PEM. Copy it again from the original file with a plain text "
            f"editor; each of those lines must start and end with five ASCII hyphens (-----)."
        )
    if _BASE64_ONLY.match(text) and len(text) >= 64:
        raise PemError(_describeBareBase64(text, inputName))
    raise PemError(
        f"The {inputName} input contains no PEM block. Paste the whole file, including the "
        f"'-----BEGIN ...-----' and '-----END ...-----' lines."
    )


def _decodeText(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\n\r\f\v" for c in text):
        return None
    return text


def _decodeBlock(label: str, body: str, inputName: str) -> PemBlock:
    headers: dict[str, str] = {}
    for header in _HEADER.finditer(body):
        headers[header.group(1)] = header.group(2)
    body = _HEADER.sub("", body)
    compact = "".join(body.split())
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise PemError(
            f"The '{label}' block of the {inputName} is damaged: its body is not valid base64 "
            f"(characters were changed, added or lost). Copy the whole file again."
        )
    # Encrypted traditional keys (with headers) and OpenSSH keys are not DER.
    if not headers and label != "OPENSSH PRIVATE KEY" and not _completeDer(der):
        raise PemError(
            f"The '{label}' block of the {inputName} is incomplete: lines are missing between "
            f"its BEGIN and END lines, so the data is damaged. Copy the whole file again."
        )
    return PemBlock(label, der, headers)


def _completeDer(der: bytes) -> bool:
    """
    Check that C{der} is exactly one DER value (a SEQUENCE for keys and
    certificates, an OID for EC parameters), so that a block with lines cut
    out is reported as incomplete.
    """
    if len(der) < 2 or der[0] & 0x1F == 0x1F:
        return False
    first = der[1]
    if first < 0x80:
        return len(der) == 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(der) < 2 + count:
        return False
    length = int.from_bytes(der[2 : 2 + count], "big")
    return len(der) == 2 + count + length


def _describeBinary(data: bytes, inputName: str) -> str:
    if data[:1] == b"\x30" and _PKCS12_VERSION in data[:8] and _PKCS7_DATA_OID in data[:40]:
        return (
            f"The {inputName} input is a PKCS#12 bundle (.p12 or .pfx file), not PEM text. "
            f"Extract the key and certificates with: openssl pkcs12 -in bundle.p12 -nodes "
            f"-out all.pem (it asks for the bundle's passphrase), then paste the PRIVATE KEY "
            f"block as the private key and the CERTIFICATE blocks as the certificate."
        )
    kind = derKind(data)
    if kind == "certificate":
        return (
            f"The {inputName} input is a certificate in binary DER form, not PEM text. Convert "
            f"it with: openssl x509 -inform der -in cert.der -out cert.pem, then paste "
            f"cert.pem."
        )
    if kind == "private key":
        return (
            f"The {inputName} input is a private key in binary DER form, not PEM text. Convert "
            f"it with: openssl pkey -inform der -in key.der -out key.pem, then paste key.pem."
        )
    return (
        f"The {inputName} input is binary data, not PEM text. Paste the text file that starts "
        f"with '-----BEGIN'; if you have a .der, .cer or .p12 file, convert it first "
        f"(openssl x509 -inform der -in cert.der -out cert.pem, or openssl pkcs12 -in "
        f"bundle.p12 -nodes -out all.pem)."
    )


def derKind(der: bytes) -> str | None:
    """
    Identify binary DER as C{"certificate"} or C{"private key"}, or return
    L{None}.  The admin page uses this to offer converting an upload.
    """
    try:
        x509.load_der_x509_certificate(der)
        return "certificate"
    except ValueError:
        pass
    try:
        serialization.load_der_private_key(der, password=None)
        return "private key"
    except TypeError:
        # Encrypted PKCS#8: a private key, readable with its passphrase.
        return "private key"
    except (ValueError, UnsupportedAlgorithm):
        return None


def derToPem(der: bytes) -> bytes:
    """
    Convert a binary DER certificate or unencrypted private key to PEM.

    @raise PemError: if C{der} is neither.
    """
    kind = derKind(der)
    if kind == "certificate":
        return PemBlock("CERTIFICATE", der).toPem()
    if kind == "private key":
        try:
            key = serialization.load_der_private_key(der, password=None)
        except TypeError:
            return PemBlock("ENCRYPTED PRIVATE KEY", der).toPem()
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    raise PemError("The data is neither a DER certificate nor a DER private key.")


def _describeBareBase64(text: str, inputName: str) -> str:
    compact = "".join(text.split())
    try:
        kind = derKind(base64.b64decode(compact, validate=True))
    except (binascii.Error, ValueError):
        kind = None
    if kind == "certificate":
        lines = "'-----BEGIN CERTIFICATE-----' and '-----END CERTIFICATE-----'"
    elif kind == "private key":
        lines = "'-----BEGIN PRIVATE KEY-----' and '-----END PRIVATE KEY-----'"
    else:
        lines = "'-----BEGIN ...-----' and '-----END ...-----'"
    return (
        f"Only the base64 body of the {inputName} was pasted: the {lines} lines are missing. "
        f"Paste the whole file including those lines."
    )
