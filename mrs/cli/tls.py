"""
C{mrs tls}: show, generate, check and install the server's key and certificate.

C{install} and C{generate} write the files in the data directory; a running
server notices the change within 2 seconds and serves the new pair without
a restart.  No command ever prompts: an encrypted key needs
C{--passphrase-file}.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from twisted.internet.defer import Deferred

from mrs.tls.generate import DEFAULT_VALIDITY_DAYS, KEY_TYPES, GenerateError, SubjectFields
from mrs.tls.material import GenerateResult, InstallRejected, TLSMaterial
from mrs.tls.validate import CertificateInfo, Problem, Report

EXIT_OK = 0
EXIT_REJECTED = 1


def register(subparsers: Any) -> None:
    """
    Add C{mrs tls} and its subcommands to the C{mrs} argument parser.
    """
    parser = subparsers.add_parser(
        "tls",
        help="show, generate, check or install the server's TLS key and certificate",
        description="Show, generate, check and install the server's TLS key and certificate. "
        "install and generate write the files in the data directory; a running server "
        "serves the new pair within 2 seconds, without a restart. No command prompts: an "
        "encrypted key needs --passphrase-file.",
    )
    commands = parser.add_subparsers(dest="tlsCommand", metavar="COMMAND", required=True)

    show = commands.add_parser("show", help="describe the installed certificate")
    show.set_defaults(func=showCommand)

    generate = commands.add_parser(
        "generate",
        help="generate a key with a self-signed certificate (installed at once) or a CSR",
    )
    mode = generate.add_mutually_exclusive_group()
    mode.add_argument(
        "--self-signed",
        dest="selfSigned",
        action="store_true",
        default=True,
        help="install a new key with a self-signed certificate for the server names (default)",
    )
    mode.add_argument(
        "--csr",
        dest="selfSigned",
        action="store_false",
        help="make a new key and a CSR for a CA; the key waits in the data directory until "
        "'mrs tls install --pending CERT' installs the signed certificate",
    )
    generate.add_argument(
        "--key-type",
        dest="keyType",
        choices=KEY_TYPES,
        help="key type (default: key_type from the configuration)",
    )
    generate.add_argument(
        "--common-name", dest="commonName", help="subject CN (default: the first server name)"
    )
    generate.add_argument("--organization", help="subject O")
    generate.add_argument("--organizational-unit", dest="organizationalUnit", help="subject OU")
    generate.add_argument("--locality", help="subject L")
    generate.add_argument("--state", help="subject ST")
    generate.add_argument("--country", help="subject C, a two-letter code")
    generate.add_argument(
        "--days", type=int,
        help=f"validity of a self-signed certificate in days (default {DEFAULT_VALIDITY_DAYS})",
    )
    generate.add_argument(
        "--out", type=Path, help="write the CSR to this file instead of standard output"
    )
    generate.set_defaults(func=generateCommand)

    for name, helpText, handler in (
        ("check", "validate a key and certificate without installing them", checkCommand),
        ("install", "validate and install a key and certificate", installCommand),
    ):
        command = commands.add_parser(name, help=helpText)
        command.add_argument(
            "files",
            nargs="+",
            type=Path,
            metavar="FILE",
            help="KEY CERT [CHAIN]: PEM files; with --pending, CERT [CHAIN]",
        )
        command.add_argument(
            "--pending",
            action="store_true",
            help="use the key of the CSR made by 'mrs tls generate --csr'",
        )
        command.add_argument(
            "--passphrase-file",
            dest="passphraseFile",
            type=Path,
            help="file whose first line is the passphrase of an encrypted key",
        )
        if name == "check":
            command.add_argument(
                "--server-name",
                dest="serverNames",
                action="append",
                metavar="NAME",
                help="host name or IP address clients use (repeatable; default: server_names "
                "from the configuration)",
            )
        command.set_defaults(func=handler)


def _material(
    context: Any, serverNames: Sequence[str] | None = None, store: Any = None
) -> TLSMaterial:
    config = context.config
    return TLSMaterial(
        config.dataDir,
        tuple(serverNames) if serverNames else tuple(config.server_names),
        config.min_tls_version,
        config.key_type,
        store,
        context.reactor,
    )


class _UsageProblem(Exception):
    pass


def _readInputs(args: argparse.Namespace) -> tuple[bytes, bytes, bytes, bytes | None]:
    files: list[Path] = list(args.files)
    expected = "CERT [CHAIN]" if args.pending else "KEY CERT [CHAIN]"
    if args.pending:
        files.insert(0, Path())
    if not 2 <= len(files) <= 3:
        raise _UsageProblem(f"expected {expected}, got {len(args.files)} file(s)")
    contents = []
    for index, path in enumerate(files):
        if args.pending and index == 0:
            contents.append(b"")
            continue
        try:
            contents.append(path.read_bytes())
        except OSError as e:
            raise _UsageProblem(f"cannot read {path}: {e.strerror}")
    passphrase = None
    if args.passphraseFile is not None:
        try:
            lines = args.passphraseFile.read_bytes().splitlines()
        except OSError as e:
            raise _UsageProblem(f"cannot read passphrase file {args.passphraseFile}: {e.strerror}")
        passphrase = lines[0] if lines else b""
    chain = contents[2] if len(contents) == 3 else b""
    return contents[0], contents[1], chain, passphrase


def printProblems(problems: Sequence[Problem], out: TextIO) -> None:
    """
    Print each problem as C{severity (input): message}.
    """
    for problem in problems:
        out.write(f"{problem.severity} ({problem.field}): {problem.message}\n")


def printInfo(
    info: CertificateInfo, chain: Sequence[CertificateInfo], days: float, out: TextIO
) -> None:
    """
    Print what an operator needs to recognise a certificate.
    """
    out.write(f"subject:     {info.subject}\n")
    out.write(f"names:       {', '.join(info.sans) or '(no subjectAltName)'}\n")
    out.write(f"issuer:      {info.issuer}{' (self-signed)' if info.selfSigned else ''}\n")
    out.write(f"valid from:  {info.notBefore:%Y-%m-%d %H:%M:%S} UTC\n")
    out.write(f"valid until: {info.notAfter:%Y-%m-%d %H:%M:%S} UTC ({days:.0f} days left)\n")
    out.write(f"SHA-256:     {info.sha256}\n")
    out.write(f"key:         {info.keyDescription}\n")
    for intermediate in chain:
        out.write(f"chain:       {intermediate.subject} (until {intermediate.notAfter:%Y-%m-%d})\n")


def showCommand(args: argparse.Namespace, context: Any) -> Deferred[int] | int:
    """
    Print the installed certificate, its chain and its warnings.
    """
    material = _material(context)
    files = material.files
    if not (files.keyPath.exists() and files.certificatePath.exists()):
        context.err.write(
            f"no TLS key and certificate in {files.directory}; start the server once, or run "
            f"'mrs tls generate' or 'mrs tls install KEY CERT'\n"
        )
        return EXIT_REJECTED
    keyPem, certPem = files.read()
    d = material.check(keyPem, certPem)

    def show(report: Report) -> int:
        if report.info is None:
            printProblems(report.problems, context.out)
            return EXIT_REJECTED
        days = report.info.daysToExpiry(material.now())
        printInfo(report.info, report.chainInfo, days, context.out)
        if material.minVersionWarning:
            context.out.write(f"warning (configuration): {material.minVersionWarning}\n")
        printProblems(report.problems, context.out)
        return EXIT_OK

    return d.addCallback(show)


def checkCommand(args: argparse.Namespace, context: Any) -> Deferred[int] | int:
    """
    Validate a pair: exit 0 when it would be accepted (printing warnings),
    1 when it would be rejected (printing each problem and its fix).
    """
    try:
        keyPem, certPem, chainPem, passphrase = _readInputs(args)
    except _UsageProblem as e:
        context.err.write(f"mrs tls check: {e}\n")
        return EXIT_REJECTED
    material = _material(context, args.serverNames)

    def report(result: Report) -> int:
        if result.info is not None:
            printInfo(
                result.info, result.chainInfo, result.info.daysToExpiry(material.now()), context.out
            )
        printProblems(result.problems, context.out)
        if result.accepted:
            context.out.write("accepted: this key and certificate can be installed\n")
            return EXIT_OK
        context.out.write("rejected: fix the errors above\n")
        return EXIT_REJECTED

    return material.check(keyPem, certPem, chainPem, passphrase).addCallback(report)


def installCommand(args: argparse.Namespace, context: Any) -> Deferred[int] | int:
    """
    Validate and install a pair; a running server serves it within 2 seconds.
    """
    try:
        keyPem, certPem, chainPem, passphrase = _readInputs(args)
    except _UsageProblem as e:
        context.err.write(f"mrs tls install: {e}\n")
        return EXIT_REJECTED
    return Deferred.fromCoroutine(_install(context, keyPem, certPem, chainPem, passphrase))


async def _install(
    context: Any, keyPem: bytes, certPem: bytes, chainPem: bytes, passphrase: bytes | None
) -> int:
    material = _material(context, store=await context.openStore())
    try:
        report = await material.install(
            keyPem, certPem, chainPem, passphrase, actor=getattr(context, "actor", "cli")
        )
    except InstallRejected as e:
        printProblems(e.report.problems, context.err)
        context.err.write("rejected: nothing was changed\n")
        return EXIT_REJECTED
    assert report.info is not None
    printProblems(report.warnings, context.out)
    context.out.write(
        f"installed {report.info.subject} (SHA-256 {report.info.sha256}) in "
        f"{material.files.directory}; a running server serves it within 2 seconds\n"
    )
    return EXIT_OK


def generateCommand(args: argparse.Namespace, context: Any) -> Deferred[int] | int:
    """
    Generate a key and either install it with a self-signed certificate or
    write a CSR.
    """
    subject = SubjectFields(
        commonName=args.commonName,
        organization=args.organization,
        organizationalUnit=args.organizationalUnit,
        locality=args.locality,
        state=args.state,
        country=args.country,
    )
    return Deferred.fromCoroutine(_generate(context, args, subject))


async def _generate(context: Any, args: argparse.Namespace, subject: SubjectFields) -> int:
    material = _material(context, store=await context.openStore())
    try:
        result: GenerateResult = await material.generate(
            args.keyType,
            args.selfSigned,
            subject,
            actor=getattr(context, "actor", "cli"),
            days=args.days,
        )
    except GenerateError as e:
        context.err.write(f"mrs tls generate: {e}\n")
        return EXIT_REJECTED
    except InstallRejected as e:
        printProblems(e.report.problems, context.err)
        return EXIT_REJECTED
    if result.report is not None:
        info = result.report.info
        assert info is not None
        printInfo(info, [], info.daysToExpiry(material.now()), context.out)
        printProblems(result.report.warnings, context.out)
        context.out.write(f"installed in {material.files.directory}\n")
        return EXIT_OK
    assert result.requestPem is not None
    if args.out is not None:
        args.out.write_bytes(result.requestPem)
        context.out.write(f"wrote the CSR to {args.out}\n")
    else:
        context.out.write(result.requestPem.decode("ascii"))
    context.out.write(
        f"The key waits in {material.files.pendingKeyPath}. Send the CSR to your CA, then "
        f"install the certificate with: mrs tls install --pending CERT [CHAIN]\n"
    )
    return EXIT_OK
