"""
The C{mrs} command line: accounts, permission rules and TLS material.

C{mrs} works on the same data directory as the server and may run while the
server runs: the SQLite store serializes writes, and the server notices
changes within a second.  Subcommands live in modules that each expose
C{register(subparsers)} and set C{func=handler} on their parsers; a handler
is C{handler(args, context) -> int | Deferred[int]} (a coroutine works too).

Exit codes: 0 success, 1 an error the user can fix (a one-line message on
standard error), 2 a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib
import inspect
import io
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from twisted.internet.defer import Deferred, ensureDeferred, fail, maybeDeferred, succeed
from twisted.python.failure import Failure

from mrs.config import Config, ConfigError, loadConfig
from mrs.store.errors import StoreError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

DEFAULT_CONFIG = "etc/mrs.ini"
DATABASE_FILE = "mrs.sqlite3"

#: Subcommand modules, imported when present.
SUBCOMMAND_MODULES = ("mrs.cli.accounts", "mrs.cli.tls", "mrs.cli.clients")


class CommandError(Exception):
    """
    A problem the user can fix; C{mrs} prints the message and exits with 1.
    """


def operatingSystemActor() -> str:
    """
    Return the audit actor for changes made from the command line:
    C{"cli:"} and the login name of the operating system user.
    """
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = f"uid{os.getuid()}"
    return f"cli:{name}"


class CommandContext:
    """
    The collaborators a subcommand handler receives besides its parsed
    arguments.

    @ivar config: the loaded L{Config}.
    @ivar reactor: the running reactor.
    @ivar out: standard output, for results.
    @ivar err: standard error, for messages.
    @ivar actor: the audit actor, C{"cli:<os user>"}.
    """

    def __init__(
        self,
        config: Config,
        reactor: Any,
        stdin: TextIO,
        out: TextIO,
        err: TextIO,
        actor: str | None = None,
        readPassword: Callable[[str], str] = getpass.getpass,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.stdin = stdin
        self.out = out
        self.err = err
        self.actor = actor if actor is not None else operatingSystemActor()
        self.clock = clock
        self._readPassword = readPassword
        self._stores: list[Any] = []

    @property
    def databasePath(self) -> Path:
        """
        The SQLite file, C{mrs.sqlite3} in the data directory.
        """
        return self.config.dataDir / DATABASE_FILE

    def ensureDataDir(self) -> Path:
        """
        Create the data directory with mode 0700 if it is missing, and
        return it.

        @raise CommandError: when it cannot be created.
        """
        dataDir = self.config.dataDir
        if not dataDir.is_dir():
            try:
                dataDir.mkdir(mode=0o700, parents=True)
                os.chmod(dataDir, 0o700)
            except OSError as e:
                raise CommandError(
                    f"cannot create the data directory {str(dataDir)!r}: {e.strerror}; "
                    f"create it or pass --data-dir"
                )
        return dataDir

    def openStore(self) -> Deferred[Any]:
        """
        Open the store named by the configuration, creating the data
        directory and the database as needed.  The store is closed when the
        command ends.

        @return: a L{Deferred} that fires with the opened L{IStore}.
        """
        try:
            store = self._createStore()
        except Exception:
            return fail()
        self._stores.append(store)
        return store.open().addCallback(lambda _: store)

    def _createStore(self) -> Any:
        database = self.config.database
        if database == "sqlite":
            from mrs.store.sqlite import SQLiteStore

            self.ensureDataDir()
            return SQLiteStore(self.databasePath, reactor=self.reactor, clock=self.clock)
        from mrs.store.postgres import PostgresStore

        return PostgresStore(database, reactor=self.reactor, clock=self.clock)

    def readSecret(self, prompt: str) -> str:
        """
        Read a password or secret: on a terminal, prompt twice without echo;
        otherwise read one line of standard input.  Never from the command
        line, where other users could see it in the process list.

        @param prompt: such as C{"Password for alice: "}.
        @raise CommandError: for an empty value, end of input or two
            entries that differ.
        """
        if self.stdin.isatty():
            try:
                value = self._readPassword(prompt)
                again = self._readPassword(f"Repeat {prompt[:1].lower()}{prompt[1:]}")
            except EOFError:
                raise CommandError("input ended before the value was entered; nothing changed")
            if value != again:
                raise CommandError("the two entries differ; run the command again")
        else:
            line = self.stdin.readline()
            if not line:
                raise CommandError(
                    "standard input is empty; pipe the value as one line, or run on a "
                    "terminal to be prompted"
                )
            value = line.rstrip("\r\n")
        if not value:
            raise CommandError("the value is empty; enter at least one character")
        return value

    def close(self) -> Deferred[None]:
        """
        Close the stores this context opened.
        """
        stores, self._stores = self._stores, []
        for store in stores:
            store.close()
        return succeed(None)


def commandGroup(subparsers: Any, name: str, **kwargs: Any) -> Any:
    """
    Return the subparsers of the command group C{name} (such as C{device}),
    adding the group first if no module has added it yet, so that several
    modules can add commands to one group.

    @param kwargs: passed to C{add_parser} when the group is new: C{help},
        C{description}.
    """
    groups = getattr(subparsers, "_mrsGroups", None)
    if groups is None:
        groups = subparsers._mrsGroups = {}
    if name not in groups:
        parser = subparsers.add_parser(name, **kwargs)
        groups[name] = parser.add_subparsers(
            dest=f"{name}Command", metavar="COMMAND", required=True
        )
    return groups[name]


def formatTable(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """
    Render rows as plain text columns aligned with two spaces, under a
    header line; the last column is not padded.
    """
    table = [list(headers)] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths[:-1], strict=True)]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def formatTime(seconds: float | None) -> str:
    """
    Show a timestamp as UTC, to the minute, such as C{2026-12-04 20:45Z}.
    """
    if seconds is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%MZ", time.gmtime(seconds))


def buildParser() -> argparse.ArgumentParser:
    """
    Build the C{mrs} parser with the global options and every subcommand
    module that is installed.
    """
    parser = argparse.ArgumentParser(
        prog="mrs",
        description="Manage the MRS server: accounts, devices, groups, permission rules "
        "and TLS material.  Works while the server runs.",
        epilog="Passwords and secrets are read from a prompt or one line of standard "
        "input, never from the command line.  Exit status: 0 success, 1 error, 2 usage.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"configuration file to read (default: {DEFAULT_CONFIG}; built-in defaults "
        f"when that file is absent)",
    )
    parser.add_argument(
        "--data-dir",
        dest="dataDir",
        metavar="PATH",
        help="data directory holding the database and TLS material; overrides data_dir "
        "from the configuration (default ./var)",
    )
    from mrs import __version__

    parser.add_argument("--version", action="version", version=f"mrs {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for moduleName in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(moduleName)
        except ImportError as e:
            if e.name == moduleName:
                continue
            raise
        module.register(subparsers)
    return parser


def _loadConfig(args: argparse.Namespace) -> Config:
    overrides = {}
    if args.dataDir is not None:
        overrides["data_dir"] = args.dataDir
    if args.config is None:
        return loadConfig(DEFAULT_CONFIG, overrides, required=False)
    return loadConfig(args.config, overrides, required=True)


def runCommand(
    argv: Sequence[str],
    reactor: Any,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    readPassword: Callable[[str], str] = getpass.getpass,
    actor: str | None = None,
) -> Deferred[int]:
    """
    Parse C{argv} (without the program name) and run the chosen handler.

    @return: a L{Deferred} that fires with the exit code; it never fails.
    """
    stdin = sys.stdin if stdin is None else stdin
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = buildParser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(list(argv))
    except SystemExit as e:
        return succeed(e.code if isinstance(e.code, int) else EXIT_USAGE)
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_usage(err)
        err.write("mrs: error: choose a command; 'mrs --help' lists them\n")
        return succeed(EXIT_USAGE)
    try:
        config = _loadConfig(args)
    except ConfigError as e:
        err.write(f"mrs: error: {e}\n")
        return succeed(EXIT_ERROR)
    context = CommandContext(
        config, reactor, stdin, out, err, actor=actor, readPassword=readPassword
    )

    def call() -> Any:
        result = handler(args, context)
        if inspect.iscoroutine(result):
            return ensureDeferred(result)
        return result

    d = maybeDeferred(call)
    d.addErrback(_reportFailure, err)

    def closeStores(code: int) -> Deferred[int]:
        return context.close().addCallback(lambda _: code)

    d.addCallback(closeStores)
    return d


def _reportFailure(failure: Failure, err: TextIO) -> int:
    """
    Print a user error as one line; print anything else with its
    traceback, as a bug.
    """
    if failure.check(StoreError, ConfigError, CommandError):
        err.write(f"mrs: error: {failure.value}\n")
        return EXIT_ERROR
    if failure.check(KeyboardInterrupt):
        err.write("mrs: interrupted; nothing more was changed\n")
        return EXIT_ERROR
    buffer = io.StringIO()
    traceback.print_exception(failure.value, file=buffer)
    err.write(buffer.getvalue())
    err.write(f"mrs: internal error: {failure.getErrorMessage()}; please report this bug\n")
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """
    Run C{mrs} with C{argv} (default: C{sys.argv[1:]}) under the reactor
    and exit with the command's exit code.
    """
    from twisted.internet.task import react

    arguments = sys.argv[1:] if argv is None else list(argv)

    def run(reactor: Any) -> Deferred[None]:
        def exit(code: int) -> None:
            raise SystemExit(code)

        return runCommand(arguments, reactor).addCallback(exit)

    react(run)
    raise AssertionError("react() returned")  # pragma: no cover
