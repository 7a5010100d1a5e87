"""
Operator inputs decided as an operator guide expects: each case under
tests/data/pem/cases/ is made at run time with the OpenSSL command line
(line 3 of its expect.txt), because certificates made once would expire.
Line 1 of expect.txt is the expected outcome; the messages are below.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from twisted.trial.unittest import SynchronousTestCase

from mrs.tls.validate import Report, checkPair
from tests.test_tls_support import HOST, requireOpenSSL

DATA = Path(__file__).parent / "data" / "pem"
CASES = DATA / "cases"

EXPIRES_IN_29_DAYS = (
    "The certificate 'mrs.example.test' expires in 29 days (on {notAfter}). Renew "
    "it before then. OpenSSL makes certificates valid for 30 days unless given "
    "-days, for example -days 365."
)
VERSION_1 = (
    "The certificate is X.509 version 1, which has no extensions (no "
    "subjectAltName, no CA:FALSE). Python 3.13 and later clients refuse a v1 "
    "self-signed certificate as a trust anchor ('invalid CA certificate'). Re-make "
    "it as version 3 with mrs tls generate, or with the openssl req -x509 command "
    "given for the missing subjectAltName (openssl x509 -req makes v1 certificates "
    "unless given extensions)."
)
SELF_SIGNED = (
    "The certificate is self-signed: clients trust it only when told to. Install "
    "it in the trust store of each machine that opens the admin page, and give "
    "clients --ca-file with this certificate or --fingerprint {fingerprint}."
)
NO_SAN = (
    "The certificate has no subjectAltName; it names the host only in its Common "
    "Name 'mrs.example.test'. Modern clients, browsers and service-identity ignore "
    "the Common Name, so host-name checks fail for this certificate. Re-make it "
    "with a subjectAltName: openssl req -x509 -new -key key.pem -out cert.pem "
    "-days 365 -subj '/CN=mrs.example.test' -addext "
    "'subjectAltName=DNS:mrs.example.test' -addext "
    "'basicConstraints=critical,CA:FALSE'. When signing a CSR with openssl x509 "
    "-req, add -copy_extensions copy, or the subjectAltName requested in the CSR "
    "is dropped."
)
RSA_1024 = (
    "The RSA key is 1024 bits; TLS libraries at their default security level "
    "refuse keys under 2048 bits ('ee key too small'). Make a 2048-bit or larger "
    "key (openssl genrsa -out key.pem 2048) and a new certificate for it."
)
SELF_SIGNED_MD5 = (
    "The self-signed certificate's own signature uses MD5. TLS clients do not "
    "check the signature of a certificate they trust directly, so it works once "
    "clients trust it, but re-make it with SHA-256 (remove -md5 or default_md = "
    "md5 from the OpenSSL command or openssl.cnf)."
)
KEY_IN_CERTIFICATE_INPUT = (
    "The certificate input also contains a private key block. Remove it from there "
    "(certificate text may be shown and exported, the key must not) and paste the "
    "key only into the private key input."
)
KEY_EMPTY = (
    "The private key input is empty. Paste the private key file (such as key.pem "
    "or server.key), including its '-----BEGIN PRIVATE KEY-----' and '-----END "
    "PRIVATE KEY-----' lines."
)
CERTIFICATE_EMPTY = (
    "The certificate input is empty. Paste the server certificate file (such as "
    "cert.pem or server.crt), including its '-----BEGIN CERTIFICATE-----' and "
    "'-----END CERTIFICATE-----' lines, followed by any intermediate certificates."
)

EXPECTED = {
    "01_guide_exact_pkcs8": [
        ("warning", "certificate", EXPIRES_IN_29_DAYS),
        ("warning", "certificate", VERSION_1),
        ("warning", "certificate", SELF_SIGNED),
        ("warning", "certificate", NO_SAN),
    ],
    "02_guide_traditional_rsa": [
        ("warning", "certificate", EXPIRES_IN_29_DAYS),
        ("warning", "certificate", VERSION_1),
        ("warning", "certificate", SELF_SIGNED),
        ("warning", "certificate", NO_SAN),
    ],
    "04_guide_cnf_req_x509_md5_1024": [
        ("error", "key", RSA_1024),
        ("warning", "certificate", SELF_SIGNED_MD5),
        ("warning", "certificate", EXPIRES_IN_29_DAYS),
        ("warning", "certificate", VERSION_1),
        ("warning", "certificate", SELF_SIGNED),
        ("warning", "certificate", NO_SAN),
    ],
    "05_md5_leaf_signed_by_ca": [
        (
            "error",
            "certificate",
            (
                "The certificate 'mrs.example.test' is signed with MD5 by 'MRS Test "
                "Intermediate CA'; TLS libraries at their default security level refuse MD5 "
                "signatures ('ca md too weak') and clients will not trust it. Have it "
                "re-issued with SHA-256."
            ),
        ),
    ],
    "06_sha1_leaf_signed_by_ca": [
        (
            "error",
            "certificate",
            (
                "The certificate 'mrs.example.test' is signed with SHA-1 by 'MRS Test "
                "Intermediate CA'; TLS libraries at their default security level refuse SHA-1 "
                "signatures ('ca md too weak') and clients will not trust it. Have it "
                "re-issued with SHA-256."
            ),
        ),
    ],
    "07_md5_self_signed": [
        ("warning", "certificate", SELF_SIGNED_MD5),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "09_guide_cn_is_operator_name": [
        (
            "warning",
            "certificate",
            (
                "The certificate 'MRS Operator' expires in 29 days (on {notAfter}). Renew it "
                "before then. OpenSSL makes certificates valid for 30 days unless given -days, "
                "for example -days 365."
            ),
        ),
        ("warning", "certificate", VERSION_1),
        ("warning", "certificate", SELF_SIGNED),
        (
            "warning",
            "certificate",
            (
                "The certificate has no subjectAltName; it names the host only in its Common "
                "Name 'MRS Operator'. Modern clients, browsers and service-identity ignore the "
                "Common Name, so host-name checks fail for this certificate. Re-make it with a "
                "subjectAltName: openssl req -x509 -new -key key.pem -out cert.pem -days 365 "
                "-subj '/CN=mrs.example.test' -addext 'subjectAltName=DNS:mrs.example.test' "
                "-addext 'basicConstraints=critical,CA:FALSE'. When signing a CSR with openssl "
                "x509 -req, add -copy_extensions copy, or the subjectAltName requested in the "
                "CSR is dropped."
            ),
        ),
        (
            "error",
            "certificate",
            (
                "The certificate is for MRS Operator, not for this server's host name "
                "mrs.example.test; clients will fail host-name checks. Make a certificate "
                "whose subjectAltName contains mrs.example.test, or, if clients really reach "
                "this server as MRS Operator, add that name to server_names in the "
                "configuration."
            ),
        ),
    ],
    "10_rsa_1024": [
        ("error", "key", RSA_1024),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "11_rsa_4096": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "12_ec_p256_pkcs8": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "14_ed25519": [
        (
            "error",
            "key",
            (
                "The key is an Ed25519 key. Ed25519 certificates work between OpenSSL-based "
                "clients over TLS 1.3, but web browsers cannot use them, so the HTTPS admin "
                "site would become unreachable from a browser. Use an RSA key of 2048 bits or "
                "more or an EC P-256 key."
            ),
        ),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "15_rsa_pss_key": [
        (
            "error",
            "key",
            (
                "The key is an RSA-PSS-only key (algorithm rsassaPss, as made by openssl "
                "genpkey -algorithm RSA-PSS); most browsers and many TLS clients cannot use "
                "its certificates. Use a plain RSA key (openssl genrsa -out key.pem 2048) or "
                "an EC P-256 key."
            ),
        ),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "17_public_key_in_key_box": [
        (
            "error",
            "key",
            (
                "The private key input contains a PUBLIC key ('BEGIN PUBLIC KEY'), which the "
                "server cannot use. Paste the private key file (such as key.pem, starting with "
                "'-----BEGIN PRIVATE KEY-----' or '-----BEGIN RSA PRIVATE KEY-----')."
            ),
        ),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "18_encrypted_key_pkcs8": [
        (
            "error",
            "passphrase",
            (
                "The private key is protected by a passphrase ('BEGIN ENCRYPTED PRIVATE KEY'), "
                "and the server cannot ask for it at start. Enter the passphrase so the server "
                "stores the key without it, or remove the passphrase yourself with: openssl "
                "pkey -in key.pem -out key-plain.pem (it asks for the passphrase) and paste "
                "key-plain.pem."
            ),
        ),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "20_san_dns_ip_guide_flow": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "21_san_dropped_by_x509_req": [
        ("warning", "certificate", VERSION_1),
        ("warning", "certificate", SELF_SIGNED),
        ("warning", "certificate", NO_SAN),
    ],
    "23_ca_true_leaf_from_ca": [
        (
            "error",
            "certificate",
            (
                "The server certificate 'mrs.example.test' is a CA certificate "
                "(basicConstraints CA:TRUE), not a server certificate. Paste the certificate "
                "issued to this server, or have it re-issued with basicConstraints CA:FALSE "
                "and extendedKeyUsage serverAuth."
            ),
        ),
    ],
    "24_ca_cert_pasted_as_server_cert": [
        (
            "warning",
            "chain",
            (
                "The certificate 'MRS Test Intermediate CA' was issued by 'MRS Test Root CA', "
                "but that CA certificate was not pasted. Clients that trust only the root CA "
                "will fail with 'unable to get local issuer certificate' unless 'MRS Test Root "
                "CA' is itself a root they trust. Paste the intermediate certificate below the "
                "server certificate."
            ),
        ),
        (
            "error",
            "certificate",
            (
                "The server certificate 'MRS Test Intermediate CA' is a CA certificate "
                "(basicConstraints CA:TRUE), not a server certificate. Paste the certificate "
                "issued to this server, or have it re-issued with basicConstraints CA:FALSE "
                "and extendedKeyUsage serverAuth."
            ),
        ),
        (
            "warning",
            "certificate",
            (
                "The certificate has no subjectAltName; it names the host only in its Common "
                "Name 'MRS Test Intermediate CA'. Modern clients, browsers and "
                "service-identity ignore the Common Name, so host-name checks fail for this "
                "certificate. Re-make it with a subjectAltName: openssl req -x509 -new -key "
                "key.pem -out cert.pem -days 365 -subj '/CN=mrs.example.test' -addext "
                "'subjectAltName=DNS:mrs.example.test' -addext "
                "'basicConstraints=critical,CA:FALSE'. When signing a CSR with openssl x509 "
                "-req, add -copy_extensions copy, or the subjectAltName requested in the CSR "
                "is dropped."
            ),
        ),
        (
            "error",
            "certificate",
            (
                "The certificate is for MRS Test Intermediate CA, not for this server's host "
                "name mrs.example.test; clients will fail host-name checks. Make a certificate "
                "whose subjectAltName contains mrs.example.test, or, if clients really reach "
                "this server as MRS Test Intermediate CA, add that name to server_names in the "
                "configuration."
            ),
        ),
    ],
    "25_name_mismatch": [
        ("warning", "certificate", SELF_SIGNED),
        (
            "error",
            "certificate",
            (
                "The certificate is for other.example.test, not for this server's host name "
                "mrs.example.test; clients will fail host-name checks. Make a certificate "
                "whose subjectAltName contains mrs.example.test, or, if clients really reach "
                "this server as other.example.test, add that name to server_names in the "
                "configuration."
            ),
        ),
    ],
    "26_san_wildcard": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "28_eku_client_auth_only": [
        (
            "error",
            "certificate",
            (
                "The certificate's extendedKeyUsage does not include TLS server authentication "
                "(serverAuth), so clients refuse it ('unsupported certificate purpose'). Have "
                "it re-issued with extendedKeyUsage=serverAuth."
            ),
        ),
    ],
    "30_expired": [
        (
            "error",
            "certificate",
            (
                "The certificate 'mrs.example.test' has expired (valid 2020-01-01 00:00 UTC to "
                "{notAfter}; the server clock reads {now}). Make or buy a new one, and check "
                "the server clock."
            ),
        ),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "31_not_yet_valid": [
        (
            "error",
            "certificate",
            (
                "The certificate 'mrs.example.test' is not valid yet (valid 2090-01-01 00:00 "
                "UTC to {notAfter}; the server clock reads {now}). Check the server clock and "
                "the dates used when making the certificate."
            ),
        ),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "40_key_cert_mismatch": [
        (
            "error",
            "key",
            (
                "The private key does not belong to the certificate: their public keys differ. "
                "Paste the key that was used to make this certificate's CSR. To compare them, "
                "these two commands must print the same hash: openssl x509 -noout -pubkey -in "
                "cert.pem | openssl sha256 and openssl pkey -pubout -in key.pem | openssl "
                "sha256."
            ),
        ),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "41_boxes_swapped": [
        (
            "error",
            "key",
            (
                "The private key input contains a certificate and the certificate input "
                "contains a private key: the two inputs appear swapped. Paste the private key "
                "into the private key input and the certificate into the certificate input."
            ),
        ),
        ("error", "certificate", KEY_IN_CERTIFICATE_INPUT),
    ],
    "42_csr_in_cert_box": [
        (
            "error",
            "certificate",
            (
                "The certificate input contains a certificate signing request ('BEGIN "
                "CERTIFICATE REQUEST'), not a certificate. Sign it first (openssl x509 -req "
                "-in server.csr -signkey key.pem -copy_extensions copy -days 365 -out "
                "server.crt) or send it to your CA, then paste the certificate (server.crt)."
            ),
        ),
    ],
    "44_private_key_in_cert_box": [
        ("error", "certificate", KEY_IN_CERTIFICATE_INPUT),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "45_same_cert_twice": [
        (
            "warning",
            "certificate",
            (
                "The certificate 'mrs.example.test' was pasted more than once; the duplicate "
                "was dropped."
            ),
        ),
        ("warning", "certificate", SELF_SIGNED),
    ],
    "47_pkcs12_nodes_output_bag_attributes": [],
    "50_crlf_line_endings": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "51_leading_trailing_whitespace": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "53_missing_final_newline": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "54_no_begin_end_lines": [
        (
            "error",
            "key",
            (
                "Only the base64 body of the private key was pasted: the '-----BEGIN PRIVATE "
                "KEY-----' and '-----END PRIVATE KEY-----' lines are missing. Paste the whole "
                "file including those lines."
            ),
        ),
        (
            "error",
            "certificate",
            (
                "Only the base64 body of the certificate was pasted: the '-----BEGIN "
                "CERTIFICATE-----' and '-----END CERTIFICATE-----' lines are missing. Paste "
                "the whole file including those lines."
            ),
        ),
    ],
    "55_truncated_no_end": [
        (
            "error",
            "certificate",
            (
                "The certificate text is cut off: the '-----BEGIN CERTIFICATE-----' line has "
                "no matching '-----END CERTIFICATE-----' line, so data is missing. Copy the "
                "whole file again, from the BEGIN line to the END line."
            ),
        ),
    ],
    "56_truncated_with_end": [
        (
            "error",
            "certificate",
            (
                "The 'CERTIFICATE' block of the certificate is incomplete: lines are missing "
                "between its BEGIN and END lines, so the data is damaged. Copy the whole file "
                "again."
            ),
        ),
    ],
    "58_chatter_around_blocks": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "59_base64_on_one_line": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "61_typographic_dashes": [
        (
            "error",
            "key",
            (
                "The dashes in the private key's BEGIN and END lines were replaced by "
                "typographic dashes (such as U+2013), as word processors and some mail clients "
                "do, so it is no longer PEM. Copy it again from the original file with a plain "
                "text editor; each of those lines must start and end with five ASCII hyphens "
                "(-----)."
            ),
        ),
        (
            "error",
            "certificate",
            (
                "The dashes in the certificate's BEGIN and END lines were replaced by "
                "typographic dashes (such as U+2013), as word processors and some mail clients "
                "do, so it is no longer PEM. Copy it again from the original file with a plain "
                "text editor; each of those lines must start and end with five ASCII hyphens "
                "(-----)."
            ),
        ),
    ],
    "62_utf8_bom": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "64_empty_boxes": [
        ("error", "key", KEY_EMPTY),
        ("error", "certificate", CERTIFICATE_EMPTY),
    ],
    "65_whitespace_only": [
        ("error", "key", KEY_EMPTY),
        ("error", "certificate", CERTIFICATE_EMPTY),
    ],
    "67_der_instead_of_pem": [
        (
            "error",
            "key",
            (
                "The private key input is a private key in binary DER form, not PEM text. "
                "Convert it with: openssl pkey -inform der -in key.der -out key.pem, then "
                "paste key.pem."
            ),
        ),
        (
            "error",
            "certificate",
            (
                "The certificate input is a certificate in binary DER form, not PEM text. "
                "Convert it with: openssl x509 -inform der -in cert.der -out cert.pem, then "
                "paste cert.pem."
            ),
        ),
    ],
    "68_pkcs12_file": [
        (
            "error",
            "key",
            (
                "The private key input is a PKCS#12 bundle (.p12 or .pfx file), not PEM text. "
                "Extract the key and certificates with: openssl pkcs12 -in bundle.p12 -nodes "
                "-out all.pem (it asks for the bundle's passphrase), then paste the PRIVATE "
                "KEY block as the private key and the CERTIFICATE blocks as the certificate."
            ),
        ),
        (
            "error",
            "certificate",
            (
                "The certificate input is a PKCS#12 bundle (.p12 or .pfx file), not PEM text. "
                "Extract the key and certificates with: openssl pkcs12 -in bundle.p12 -nodes "
                "-out all.pem (it asks for the bundle's passphrase), then paste the PRIVATE "
                "KEY block as the private key and the CERTIFICATE blocks as the certificate."
            ),
        ),
    ],
    "70_chain_leaf_intermediate": [],
    "71_chain_with_root": [
        (
            "warning",
            "chain",
            (
                "The root certificate 'MRS Test Root CA' was dropped from the chain the server "
                "sends: clients must already trust it, so sending it only adds bytes."
            ),
        ),
    ],
    "72_chain_intermediate_first": [
        (
            "warning",
            "certificate",
            (
                "The certificates were in the wrong order: the server certificate "
                "('mrs.example.test', the one whose public key matches the private key) came "
                "after 1 other certificate(s). It was moved to the front, because the server "
                "must send it first; a plain OpenSSL loader reports this order only as 'key "
                "values mismatch'."
            ),
        ),
    ],
    "74_leaf_only_missing_intermediate": [
        (
            "warning",
            "chain",
            (
                "The certificate 'mrs.example.test' was issued by 'MRS Test Intermediate CA', "
                "but that CA certificate was not pasted. Clients that trust only the root CA "
                "will fail with 'unable to get local issuer certificate' unless 'MRS Test "
                "Intermediate CA' is itself a root they trust. Paste the intermediate "
                "certificate below the server certificate."
            ),
        ),
    ],
    "75_chain_unrelated_intermediate": [
        (
            "error",
            "certificate",
            (
                "The certificate 'Unrelated Intermediate CA' did not issue the server "
                "certificate or any certificate of its chain (the server certificate's issuer "
                "is 'MRS Test Intermediate CA'). Remove it and paste the intermediate "
                "certificate your CA supplied for this certificate."
            ),
        ),
    ],
    "78_single_line_input_field": [
        ("warning", "certificate", SELF_SIGNED),
    ],
    "80_hot_reload_replacement": [
        ("warning", "certificate", SELF_SIGNED),
    ],
}


def _dependencies(command: str) -> list[str]:
    return re.findall(r"\.\./(\d\d_[a-z0-9_]+)/", command)


def makeCases(root: Path) -> dict[str, str]:
    """
    Run every case's command in its own folder under C{root}, cases it
    copies from first.  Return the expected outcome by case name.
    """
    requireOpenSSL()
    shutil.copytree(DATA / "_ca", root / "_ca")
    # "openssl ca" writes into this folder; git keeps no empty folders, so a
    # fresh clone lacks it.
    (root / "_ca" / "cadb" / "newcerts").mkdir(exist_ok=True)
    shutil.copytree(DATA / "_guide", root / "_guide")
    commands = {}
    outcomes = {}
    for folder in sorted(CASES.iterdir()):
        lines = (folder / "expect.txt").read_text(encoding="utf-8").splitlines()
        outcomes[folder.name] = lines[0]
        commands[folder.name] = lines[2]
    done: set[str] = set()

    def make(name: str) -> None:
        if name in done:
            return
        for dependency in _dependencies(commands[name]):
            make(dependency)
        (root / name).mkdir()
        environment = {k: v for k, v in os.environ.items() if k != "OPENSSL_CONF"}
        result = subprocess.run(  # noqa: S603 - the commands are the test's own data
            ["bash", "-c", commands[name]],  # noqa: S607
            cwd=root / name,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"making case {name} failed: {result.stderr}")
        done.add(name)

    for name in commands:
        make(name)
    return outcomes


def describe(report: Report, now: datetime) -> list[tuple[str, str, str]]:
    """
    List the problems with the run-time values (fingerprint, expiry, clock)
    replaced by the placeholders used in L{EXPECTED}.
    """
    problems = []
    for problem in report.problems:
        message = problem.message
        if report.info is not None:
            message = message.replace(report.info.sha256, "{fingerprint}")
            message = message.replace(
                report.info.notAfter.strftime("%Y-%m-%d %H:%M UTC"), "{notAfter}"
            )
        message = message.replace(now.strftime("%Y-%m-%d %H:%M UTC"), "{now}")
        problems.append((problem.severity, problem.field, message))
    return problems


class OperatorCaseTests(SynchronousTestCase):
    """
    Every case folder is decided as its expect.txt says, with the messages
    in L{EXPECTED}.
    """

    # Trial has no setUpClass, so the cases are made once per test run, in
    # trial's working directory (_trial_temp), which trial clears next run.
    made: ClassVar[tuple[Path, dict[str, str]] | None] = None

    def setUp(self) -> None:
        if OperatorCaseTests.made is None:
            root = Path(tempfile.mkdtemp(prefix="pem-cases-", dir="."))
            OperatorCaseTests.made = (root, makeCases(root))
        self.root, self.outcomes = OperatorCaseTests.made

    def check(self, name: str) -> None:
        folder = self.root / name
        now = datetime.now(UTC)
        report = checkPair(
            (folder / "key.pem").read_bytes(),
            (folder / "cert.pem").read_bytes(),
            serverNames=(HOST,),
            now=now,
        )
        self.assertEqual("ACCEPT" if report.accepted else "REJECT", self.outcomes[name])
        self.assertEqual(describe(report, now), EXPECTED[name])

    def test_everyCaseListed(self) -> None:
        """
        The table covers exactly the case folders.
        """
        self.assertEqual(sorted(EXPECTED), sorted(self.outcomes))


def _addCaseTest(name: str) -> None:
    def test(self: OperatorCaseTests) -> None:
        self.check(name)

    test.__doc__ = f"Case {name} is decided as its expect.txt says."
    setattr(OperatorCaseTests, f"test_{name}", test)


for _name in sorted(p.name for p in CASES.iterdir()):
    _addCaseTest(_name)
