"""
Variations of the operator inputs that the case folders do not cover: the
operator guide's three commands verbatim, traditional encrypted keys, other
curves, PKCS#7, a separate chain input, the size limit, DER conversion.
"""

from __future__ import annotations

import ipaddress
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.trial.unittest import SynchronousTestCase

from mrs.tls.pem import derToPem
from mrs.tls.validate import checkPair
from tests.test_tls_support import HOST, certificatePem, pem, requireOpenSSL, selfSignedPair

CA = Path(__file__).parent / "data" / "pem" / "_ca"


def run(command: str, cwd: Path) -> None:
    requireOpenSSL()
    result = subprocess.run(  # noqa: S603 - fixed test commands
        ["bash", "-c", command],  # noqa: S607
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"{command!r} failed: {result.stderr}")


def messages(report: object, severity: str) -> list[str]:
    return [p.message for p in report.problems if p.severity == severity]  # type: ignore[attr-defined]


class OpenSSLVariationTests(SynchronousTestCase):
    """
    Inputs made with the OpenSSL command line.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        self.now = datetime.now(UTC)

    def read(self, name: str) -> bytes:
        # The certificates start at the moment OpenSSL makes them.
        self.now = datetime.now(UTC)
        return (self.directory / name).read_bytes()

    def test_guideCommandsVerbatim(self) -> None:
        """
        The operator guide's three commands make an accepted pair whose
        warnings say it lacks subjectAltName, is v1, self-signed and
        short-lived.
        """
        for command in (
            "openssl genrsa -out key1.pem 2048",
            "openssl req -new -key key1.pem -out server.csr -subj '/CN=mrs.example.test'",
            "openssl x509 -req -in server.csr -signkey key1.pem -out server.crt",
        ):
            run(command, self.directory)
        report = checkPair(
            self.read("key1.pem"), self.read("server.crt"), b"", None, (HOST,), self.now
        )
        self.assertTrue(report.accepted)
        self.assertEqual(messages(report, "error"), [])
        warnings = messages(report, "warning")
        self.assertEqual(len(warnings), 4)
        self.assertTrue(
            warnings[0].startswith("The certificate 'mrs.example.test' expires in 29 days")
        )
        self.assertTrue(warnings[1].startswith("The certificate is X.509 version 1"))
        self.assertTrue(warnings[2].startswith("The certificate is self-signed"))
        self.assertTrue(warnings[3].startswith("The certificate has no subjectAltName"))
        assert report.info is not None
        self.assertEqual(report.info.keyDescription, "RSA 2048 bit")

    def test_shippedOpenSSLConfig(self) -> None:
        """
        The commands in etc/openssl.cnf make a pair accepted with only the
        self-signed warning, and a CSR that asks for the subjectAltName.
        """
        config = Path(__file__).resolve().parent.parent / "etc" / "openssl.cnf"
        run(
            f"openssl req -x509 -new -config {config} -nodes -keyout server.key "
            f"-out server.crt -days 365 && openssl req -new -config {config} -nodes "
            f"-keyout csr.key -out server.csr",
            self.directory,
        )
        report = checkPair(
            self.read("server.key"),
            self.read("server.crt"),
            b"",
            None,
            (HOST, "127.0.0.1"),
            self.now,
        )
        self.assertTrue(report.accepted)
        self.assertEqual(len(report.warnings), 1)
        self.assertTrue(report.warnings[0].message.startswith("The certificate is self-signed"))
        assert report.info is not None
        self.assertEqual(report.info.keyDescription, "RSA 2048 bit")
        self.assertEqual(report.info.signatureHash, "sha256")
        request = x509.load_pem_x509_csr(self.read("server.csr"))
        self.assertEqual(
            request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
            x509.SubjectAlternativeName(
                [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
        )

    def test_traditionalEncryptedKey(self) -> None:
        """
        A traditional encrypted key ('Proc-Type: 4,ENCRYPTED') asks for its
        passphrase, rejects a wrong one and is accepted with the right one.
        """
        run(
            "openssl genrsa -traditional -aes256 -passout pass:secret -out key.pem 2048 && "
            "openssl req -x509 -new -key key.pem -passin pass:secret -out cert.pem -days 825 "
            "-subj /CN=mrs.example.test -addext subjectAltName=DNS:mrs.example.test "
            "-addext basicConstraints=critical,CA:FALSE",
            self.directory,
        )
        keyPem, certPem = self.read("key.pem"), self.read("cert.pem")
        self.assertIn(b"Proc-Type: 4,ENCRYPTED", keyPem)

        missing = checkPair(keyPem, certPem, b"", None, (HOST,), self.now)
        self.assertFalse(missing.accepted)
        self.assertEqual(
            [(p.field, p.message) for p in missing.errors],
            [
                (
                    "passphrase",
                    "The private key is protected by a passphrase ('BEGIN RSA PRIVATE KEY' "
                    "with Proc-Type: 4,ENCRYPTED), and the server cannot ask for it at start. "
                    "Enter the passphrase so the server stores the key without it, or remove "
                    "the passphrase yourself with: openssl pkey -in key.pem -out key-plain.pem "
                    "(it asks for the passphrase) and paste key-plain.pem.",
                )
            ],
        )
        wrong = checkPair(keyPem, certPem, b"", "not it", (HOST,), self.now)
        self.assertEqual(
            [(p.field, p.message) for p in wrong.errors],
            [
                (
                    "passphrase",
                    "The passphrase does not decrypt the private key. Enter the passphrase "
                    "that was set when the key was made, or remove it with: openssl pkey -in "
                    "key.pem -out key-plain.pem.",
                )
            ],
        )
        right = checkPair(keyPem, certPem, b"", b"secret", (HOST,), self.now)
        self.assertTrue(right.accepted)
        self.assertTrue(right.keyPem().startswith(b"-----BEGIN PRIVATE KEY-----\n"))

    def test_encryptedPkcs8WithPassphrase(self) -> None:
        """
        An encrypted PKCS#8 key is accepted when its passphrase is given.
        """
        run(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 "
            "-pass pass:mrs-test -out key.pem && openssl req -x509 -new -key key.pem "
            "-passin pass:mrs-test -out cert.pem -days 825 -subj /CN=mrs.example.test "
            "-addext subjectAltName=DNS:mrs.example.test "
            "-addext basicConstraints=critical,CA:FALSE",
            self.directory,
        )
        keyPem = self.read("key.pem")
        self.assertTrue(keyPem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        report = checkPair(keyPem, self.read("cert.pem"), b"", "mrs-test", (HOST,), self.now)
        self.assertTrue(report.accepted)

    def test_ecP384Traditional(self) -> None:
        """
        'openssl ecparam -genkey' output, an EC PARAMETERS block before a
        traditional 'BEGIN EC PRIVATE KEY', is accepted as a P-384 key.
        """
        run(
            "openssl ecparam -name secp384r1 -genkey -out key.pem && openssl req -x509 -new "
            "-key key.pem -out cert.pem -days 825 -subj /CN=mrs.example.test "
            "-addext subjectAltName=DNS:mrs.example.test "
            "-addext basicConstraints=critical,CA:FALSE",
            self.directory,
        )
        keyPem = self.read("key.pem")
        self.assertIn(b"BEGIN EC PARAMETERS", keyPem)
        self.assertIn(b"BEGIN EC PRIVATE KEY", keyPem)
        report = checkPair(keyPem, self.read("cert.pem"), b"", None, (HOST,), self.now)
        self.assertTrue(report.accepted)
        assert report.info is not None
        self.assertEqual(report.info.keyDescription, "EC P-384")

    def test_reqX509DefaultIsCA(self) -> None:
        """
        'openssl req -x509' without basicConstraints makes a CA:TRUE
        certificate, rejected with the option that fixes it.
        """
        run(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem && "
            "openssl req -x509 -new -key key.pem -out cert.pem -days 825 "
            "-subj /CN=mrs.example.test -addext subjectAltName=DNS:mrs.example.test",
            self.directory,
        )
        report = checkPair(
            self.read("key.pem"), self.read("cert.pem"), b"", None, (HOST,), self.now
        )
        self.assertEqual(
            [(p.field, p.message) for p in report.errors],
            [
                (
                    "certificate",
                    "The server certificate 'mrs.example.test' is a CA certificate "
                    "(basicConstraints CA:TRUE), not a server certificate. Re-make it with "
                    "-addext 'basicConstraints=critical,CA:FALSE': openssl req -x509 marks "
                    "certificates CA:TRUE unless told otherwise (or use mrs tls generate, or "
                    "-config with the openssl.cnf shipped with this server).",
                )
            ],
        )

    def test_pkcs7Bundle(self) -> None:
        """
        A PKCS#7 bundle in the certificate input is rejected with the
        conversion command.
        """
        keyPem, certPem = selfSignedPair()
        (self.directory / "cert.pem").write_bytes(certPem)
        run("openssl crl2pkcs7 -nocrl -certfile cert.pem -out cert.p7b", self.directory)
        report = checkPair(keyPem, self.read("cert.p7b"), b"", None, (HOST,), self.now)
        self.assertEqual(
            messages(report, "error")[0],
            "The certificate input is a PKCS#7 bundle ('BEGIN PKCS7', often a .p7b file). "
            "Convert it with: openssl pkcs7 -print_certs -in cert.p7b -out cert.pem, then "
            "paste cert.pem.",
        )


def issueLeaf(names: tuple[str, ...], days: int = 825) -> tuple[bytes, x509.Certificate]:
    """
    Issue a server certificate from the test CA's intermediate.
    """
    intermediateKey = serialization.load_pem_private_key(
        (CA / "intermediate.key").read_bytes(), None
    )
    intermediate = x509.load_pem_x509_certificate((CA / "intermediate.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(intermediateKey, hashes.SHA256())  # type: ignore[arg-type]
    )
    return pem(key), leaf


class CryptographyVariationTests(SynchronousTestCase):
    """
    Inputs built with cryptography.
    """

    def setUp(self) -> None:
        self.now = datetime.now(UTC)

    def test_chainInputReversedWithCRLF(self) -> None:
        """
        A separate chain input with root and intermediate in reverse order
        and CRLF line endings is rebuilt leaf first, without the root.
        """
        keyPem, leaf = issueLeaf((HOST,))
        chainPem = (CA / "root.pem").read_bytes() + (CA / "intermediate.pem").read_bytes()
        chainPem = chainPem.replace(b"\n", b"\r\n")
        report = checkPair(keyPem, certificatePem(leaf), chainPem, None, (HOST,), self.now)
        self.assertTrue(report.accepted)
        self.assertEqual(
            [c.subject.rfc4514_string() for c in report.certificates],
            ["CN=mrs.example.test", "CN=MRS Test Intermediate CA,O=MRS Test"],
        )
        self.assertEqual(
            messages(report, "warning"),
            [
                "The root certificate 'MRS Test Root CA' was dropped from the chain the server "
                "sends: clients must already trust it, so sending it only adds bytes."
            ],
        )
        self.assertEqual(report.certificatePem().count(b"BEGIN CERTIFICATE"), 2)

    def test_namePartlyCovered(self) -> None:
        """
        A certificate that covers some configured names is accepted with a
        warning naming the others and the subjectAltName to add.
        """
        keyPem, leaf = issueLeaf((HOST,))
        names = (HOST, "mrs2.example.test", "192.0.2.7")
        chainPem = (CA / "intermediate.pem").read_bytes()
        report = checkPair(keyPem, certificatePem(leaf), chainPem, None, names, self.now)
        self.assertTrue(report.accepted)
        self.assertEqual(
            messages(report, "warning"),
            [
                "The certificate does not cover the configured server names "
                "mrs2.example.test, 192.0.2.7 (it covers mrs.example.test); clients that use "
                "those names will fail host-name checks. Add "
                "DNS:mrs2.example.test,IP:192.0.2.7 to the subjectAltName."
            ],
        )

    def test_expiresSoon(self) -> None:
        """
        A certificate that expires within 30 days is accepted with a warning.
        """
        keyPem, leaf = issueLeaf((HOST,), days=10)
        chainPem = (CA / "intermediate.pem").read_bytes()
        now = datetime.now(UTC)
        report = checkPair(keyPem, certificatePem(leaf), chainPem, None, (HOST,), now)
        self.assertTrue(report.accepted)
        notAfter = leaf.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
        self.assertEqual(
            messages(report, "warning"),
            [
                f"The certificate 'mrs.example.test' expires in 9 days (on {notAfter}). Renew "
                f"it before then. OpenSSL makes certificates valid for 30 days unless given "
                f"-days, for example -days 365."
            ],
        )

    def test_startsInAFewMinutes(self) -> None:
        """
        A certificate that starts within 5 minutes (a clock slightly ahead)
        is accepted with a warning; one that starts later is rejected.
        """
        keyPem, leaf = issueLeaf((HOST,))
        chainPem = (CA / "intermediate.pem").read_bytes()
        start = leaf.not_valid_before_utc
        early = checkPair(
            keyPem, certificatePem(leaf), chainPem, None, (HOST,), start - timedelta(seconds=90)
        )
        self.assertTrue(early.accepted)
        self.assertEqual(
            messages(early, "warning"),
            [
                f"The certificate 'mrs.example.test' becomes valid only at "
                f"{start:%H:%M:%S} UTC, 90 seconds from now (server clock reads "
                f"{start - timedelta(seconds=90):%Y-%m-%d %H:%M} UTC); clients refuse it until "
                f"then. Check the clocks of this server and of the machine that made the "
                f"certificate."
            ],
        )
        late = checkPair(
            keyPem, certificatePem(leaf), chainPem, None, (HOST,), start - timedelta(minutes=6)
        )
        self.assertFalse(late.accepted)
        self.assertIn("is not valid yet", messages(late, "error")[0])

    def test_curveP521Rejected(self) -> None:
        """
        An EC key on a curve browsers do not support for certificates is
        rejected.
        """
        key = ec.generate_private_key(ec.SECP521R1())
        report = checkPair(pem(key), selfSignedPair()[1], b"", None, (HOST,), self.now)
        self.assertEqual(
            messages(report, "error")[0],
            "The EC key uses the curve secp521r1; browsers and common TLS clients support "
            "only P-256 and P-384 for certificates. Make a P-256 key: openssl genpkey "
            "-algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem.",
        )

    def test_inputOverLimit(self) -> None:
        """
        An input over 64 KiB is rejected before parsing.
        """
        keyPem, certPem = selfSignedPair()
        report = checkPair(keyPem, certPem + b"x" * 70000, b"", None, (HOST,), self.now)
        self.assertEqual(
            messages(report, "error"),
            [
                f"The certificate input is {len(certPem) + 70000} bytes, over the limit of "
                f"65536 bytes. Paste only the certificate file; a key and a chain of a few "
                f"certificates take well under 16 KiB."
            ],
        )

    def test_derConverted(self) -> None:
        """
        DER key and certificate converted with L{derToPem} are accepted.
        """
        keyPem, certPem = selfSignedPair((HOST,))
        keyDer = serialization.load_pem_private_key(keyPem, None).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        certDer = x509.load_pem_x509_certificate(certPem).public_bytes(serialization.Encoding.DER)
        report = checkPair(derToPem(keyDer), derToPem(certDer), b"", None, (HOST,), self.now)
        self.assertTrue(report.accepted)

    def test_certificateInKeyInput(self) -> None:
        """
        A certificate pasted as the key is rejected with what to paste instead.
        """
        _, certPem = selfSignedPair((HOST,))
        report = checkPair(certPem, certPem, b"", None, (HOST,), self.now)
        self.assertEqual(
            [(p.field, p.message) for p in report.errors],
            [
                (
                    "key",
                    "The private key input contains a certificate ('BEGIN CERTIFICATE'), not "
                    "a private key. Paste the private key file (such as key.pem or server.key, "
                    "starting with '-----BEGIN PRIVATE KEY-----' or "
                    "'-----BEGIN RSA PRIVATE KEY-----').",
                )
            ],
        )
