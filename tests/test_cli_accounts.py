"""
Tests for the C{mrs} command line framework (L{mrs.cli}) and its account
commands (L{mrs.cli.accounts}): parsing, handlers run in-process against a
real SQLite file, and a few runs of the real entry point in a subprocess.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from twisted.trial.unittest import SynchronousTestCase, TestCase

import mrs
from mrs.cli import (
    CommandContext,
    CommandError,
    accounts,
    buildParser,
    commandGroup,
    formatTable,
    runCommand,
)
from mrs.cli.accounts import (
    formatDays,
    formatSchedule,
    parseDays,
    parseRights,
    parseSubject,
    parseTarget,
    parseTime,
)
from mrs.config import loadConfig
from mrs.passwords import verifyPassword
from mrs.store.models import RIGHTS, Schedule
from mrs.store.sqlite import SQLiteStore

REPOSITORY = Path(mrs.__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"  # noqa: S105
SECRET = "device-secret-42"  # noqa: S105


class TerminalInput(io.StringIO):
    """
    Standard input that claims to be a terminal.
    """

    def isatty(self) -> bool:
        return True


class ParsingTests(SynchronousTestCase):
    def test_subject(self) -> None:
        self.assertEqual(parseSubject("alice"), ("user", "alice"))
        self.assertEqual(parseSubject("user:alice"), ("user", "alice"))
        self.assertEqual(parseSubject("group:ops"), ("user_group", "ops"))

    def test_subjectInvalid(self) -> None:
        error = self.assertRaises(argparse.ArgumentTypeError, parseSubject, "device:cam-01")
        self.assertEqual(
            str(error),
            "invalid value 'device:cam-01': expected a user (alice or user:alice) or a user "
            "group (group:ops)",
        )
        error = self.assertRaises(argparse.ArgumentTypeError, parseSubject, "group:")
        self.assertEqual(str(error), "invalid value 'group:': the name is missing")

    def test_target(self) -> None:
        self.assertEqual(parseTarget("cam-01"), ("device", "cam-01"))
        self.assertEqual(parseTarget("device:cam-01"), ("device", "cam-01"))
        self.assertEqual(parseTarget("group:vans"), ("device_group", "vans"))
        error = self.assertRaises(argparse.ArgumentTypeError, parseTarget, "user:alice")
        self.assertEqual(
            str(error),
            "invalid value 'user:alice': expected a device (cam-01 or device:cam-01) or a "
            "device group (group:vans)",
        )

    def test_days(self) -> None:
        self.assertEqual(parseDays("mon-fri"), frozenset({0, 1, 2, 3, 4}))
        self.assertEqual(parseDays("sat,sun"), frozenset({5, 6}))
        self.assertEqual(parseDays("fri-mon"), frozenset({4, 5, 6, 0}))
        self.assertEqual(parseDays("Wed"), frozenset({2}))
        self.assertEqual(parseDays("all"), frozenset(range(7)))
        error = self.assertRaises(argparse.ArgumentTypeError, parseDays, "mon-fry")
        self.assertEqual(
            str(error),
            "invalid days 'mon-fry': use mon, tue, wed, thu, fri, sat, sun, ranges such as "
            "mon-fri, lists such as sat,sun, or all",
        )

    def test_time(self) -> None:
        self.assertEqual(parseTime("08:00"), 480)
        self.assertEqual(parseTime("7:05"), 425)
        self.assertEqual(parseTime("24:00"), 1440)
        for bad in ("24:01", "8", "08:60", "8am", "-1:00"):
            error = self.assertRaises(argparse.ArgumentTypeError, parseTime, bad)
            self.assertEqual(str(error), f"invalid time {bad!r}: use HH:MM from 00:00 to 24:00")

    def test_rights(self) -> None:
        self.assertEqual(parseRights(["video,audio", "Talk"]), ["video", "audio", "talk"])
        self.assertEqual(parseRights(["all"]), list(RIGHTS))

    def test_formatDays(self) -> None:
        self.assertEqual(formatDays(frozenset({0, 1, 2, 3, 4})), "mon-fri")
        self.assertEqual(formatDays(frozenset({5, 6})), "sat,sun")
        self.assertEqual(formatDays(frozenset({0, 2, 4, 5, 6})), "mon,wed,fri-sun")
        self.assertEqual(formatDays(frozenset(range(7))), "all")

    def test_formatSchedule(self) -> None:
        self.assertEqual(formatSchedule(None), "always")
        self.assertEqual(
            formatSchedule(Schedule(frozenset({5, 6}), 22 * 60, 6 * 60)), "sat,sun 22:00-06:00"
        )

    def test_formatTable(self) -> None:
        self.assertEqual(
            formatTable(("ID", "NAME"), [("cam-01", "Van 3"), ("c", "")]),
            "ID      NAME\ncam-01  Van 3\nc\n",
        )
        self.assertEqual(formatTable(("ID", "NAME"), []), "ID  NAME\n")

    def test_commandGroupShared(self) -> None:
        """
        A second module can add commands to a group that another added.
        """
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        first = commandGroup(subparsers, "device", help="devices")
        first.add_parser("add").set_defaults(func="add")
        second = commandGroup(subparsers, "device", help="ignored")
        second.add_parser("stream").set_defaults(func="stream")
        self.assertIs(first, second)
        self.assertEqual(parser.parse_args(["device", "stream"]).func, "stream")
        self.assertEqual(parser.parse_args(["device", "add"]).func, "add")

    def test_everyOptionHasHelp(self) -> None:
        """
        Every option and argument of every command has help text.
        """
        parser = buildParser()

        def walk(p: argparse.ArgumentParser, path: str) -> None:
            for action in p._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for name, child in action.choices.items():
                        walk(child, f"{path} {name}")
                elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
                    self.assertTrue(action.help, f"{path}: {action.dest} has no help")

        walk(parser, "mrs")


class ReadSecretTests(SynchronousTestCase):
    def context(self, stdin: io.StringIO, answers: list[str] | None = None) -> CommandContext:
        prompts: list[str] = []
        self.prompts = prompts

        def readPassword(prompt: str) -> str:
            prompts.append(prompt)
            if not answers:
                raise EOFError()
            return answers.pop(0)

        return CommandContext(
            loadConfig(None), None, stdin, io.StringIO(), io.StringIO(), actor="cli:test",
            readPassword=readPassword,
        )

    def test_pipe(self) -> None:
        context = self.context(io.StringIO("s3cret  \r\nnext line\n"))
        self.assertEqual(context.readSecret("Password: "), "s3cret  ")

    def test_pipeEmpty(self) -> None:
        error = self.assertRaises(CommandError, self.context(io.StringIO("")).readSecret, "P: ")
        self.assertEqual(
            str(error),
            "standard input is empty; pipe the value as one line, or run on a terminal to "
            "be prompted",
        )
        error = self.assertRaises(CommandError, self.context(io.StringIO("\n")).readSecret, "P: ")
        self.assertEqual(str(error), "the value is empty; enter at least one character")

    def test_terminalTwice(self) -> None:
        context = self.context(TerminalInput(), ["pw", "pw"])
        self.assertEqual(context.readSecret("Password for alice: "), "pw")
        self.assertEqual(self.prompts, ["Password for alice: ", "Repeat password for alice: "])

    def test_terminalMismatch(self) -> None:
        context = self.context(TerminalInput(), ["pw", "pW"])
        error = self.assertRaises(CommandError, context.readSecret, "Password: ")
        self.assertEqual(str(error), "the two entries differ; run the command again")

    def test_terminalEndOfInput(self) -> None:
        context = self.context(TerminalInput(), [])
        error = self.assertRaises(CommandError, context.readSecret, "Password: ")
        self.assertEqual(str(error), "input ended before the value was entered; nothing changed")


def cheapHash(password: str) -> str:
    """
    Hash with the smallest Argon2id parameters, to keep these tests fast;
    L{verifyPassword} reads the parameters from the hash.
    """
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(password)


class CommandTests(TestCase):
    """
    Run handlers in-process through L{runCommand} on a real SQLite file.
    """

    def setUp(self) -> None:
        self.dataDir = Path(self.mktemp()) / "data"
        self.patch(accounts, "hashPassword", cheapHash)

    async def mrs(
        self, *argv: str, stdin: str = "", terminal: list[str] | None = None
    ) -> tuple[int, str, str]:
        """
        Run C{mrs --data-dir DATA argv...} and return (exit code, out, err).
        """
        from twisted.internet import reactor

        answers = list(terminal or [])
        out, err = io.StringIO(), io.StringIO()
        code = await runCommand(
            ["--data-dir", str(self.dataDir), *argv],
            reactor,
            stdin=TerminalInput() if terminal is not None else io.StringIO(stdin),
            out=out,
            err=err,
            readPassword=lambda prompt: answers.pop(0),
            actor="cli:tester",
        )
        return code, out.getvalue(), err.getvalue()

    async def store(self) -> Any:
        store = SQLiteStore(self.dataDir / "mrs.sqlite3")
        self.addCleanup(store.close)
        await store.open()
        return store

    async def assertRun(self, argv: list[str], out: str, stdin: str = "") -> None:
        self.assertEqual(await self.mrs(*argv, stdin=stdin), (0, out, ""))

    async def assertError(self, argv: list[str], message: str, stdin: str = "") -> None:
        self.assertEqual(await self.mrs(*argv, stdin=stdin), (1, "", f"mrs: error: {message}\n"))

    # Framework

    async def test_noCommand(self) -> None:
        code, out, err = await self.mrs()
        self.assertEqual(code, 2)
        self.assertEqual(out, "")
        self.assertTrue(err.startswith("usage: mrs "))
        self.assertTrue(err.endswith("mrs: error: choose a command; 'mrs --help' lists them\n"))

    async def test_unknownCommand(self) -> None:
        code, out, err = await self.mrs("frobnicate")
        self.assertEqual(code, 2)
        self.assertIn("mrs: error: argument COMMAND: invalid choice: 'frobnicate'", err)

    async def test_help(self) -> None:
        code, out, err = await self.mrs("grant", "--help")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("who: alice or user:alice for a user", out)
        self.assertIn("--from HH:MM", out)

    async def test_missingConfig(self) -> None:
        """
        An explicit --config that does not exist is an error (exit 1).
        """
        missing = self.mktemp()
        await self.assertError(
            ["--config", missing, "user", "list"],
            f"{missing}: configuration file not found; create it from etc/mrs.ini in the "
            f"source tree or pass --config with the right path",
        )

    async def test_configDataDir(self) -> None:
        """
        data_dir comes from the configuration unless --data-dir overrides it.
        """
        from twisted.internet import reactor

        configured = Path(self.mktemp())
        config = Path(self.mktemp())
        config.write_text(f"[server]\ndata_dir = {configured}\n")
        out = io.StringIO()
        code = await runCommand(
            ["--config", str(config), "group", "add", "user", "ops"], reactor,
            stdin=io.StringIO(), out=out, err=io.StringIO(), actor="cli:tester",
        )
        self.assertEqual(code, 0)
        self.assertTrue((configured / "mrs.sqlite3").exists())
        self.assertFalse(self.dataDir.exists())

    async def test_dataDirCreated(self) -> None:
        await self.assertRun(["user", "list"], "NAME  ROLE  STATUS  PASSWORD  CREATED\n")
        self.assertEqual(stat.S_IMODE(os.stat(self.dataDir).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(self.dataDir / "mrs.sqlite3").st_mode), 0o600)

    # Users

    async def test_userAdd(self) -> None:
        """
        The password comes from standard input; the store gets its hash and
        the audit entry names the operating system user.
        """
        await self.assertRun(
            ["user", "add", "alice", "--role", "admin"], "added user alice with role admin\n",
            stdin=PASSWORD + "\n",
        )
        store = await self.store()
        user = await store.getUser("alice")
        self.assertEqual((user.role, user.mustChangePassword), ("admin", False))
        self.assertTrue(verifyPassword(user.passwordHash, PASSWORD))
        [entry] = await store.listAudit()
        self.assertEqual((entry.actor, entry.action, entry.object),
                         ("cli:tester", "user.add", "user:alice"))
        self.assertNotIn(PASSWORD, entry.detail)
        self.assertNotIn(user.passwordHash, entry.detail)

    async def test_shortPasswordRejected(self) -> None:
        """
        A user password under 12 characters is rejected, as on the admin
        site, and nothing is added.
        """
        await self.assertError(
            ["user", "add", "carol"],
            "the password is too short; use at least 12 characters (a passphrase of several "
            "words is easy to remember); nothing changed",
            stdin="short\n")
        store = await self.store()
        self.assertIsNone(await store.getUser("carol"))

    async def test_userAddTerminal(self) -> None:
        same = ["long-enough-pw-1", "long-enough-pw-1"]
        code, out, err = await self.mrs("user", "add", "alice", terminal=same)
        self.assertEqual((code, out, err), (0, "added user alice with role operator\n", ""))
        differing = ["long-enough-pw-1", "long-enough-pw-2"]
        code, out, err = await self.mrs("user", "add", "bob", terminal=differing)
        self.assertEqual(
            (code, out, err), (1, "", "mrs: error: the two entries differ; run the command again\n")
        )
        store = await self.store()
        self.assertIsNone(await store.getUser("bob"))

    async def test_userAddGenerate(self) -> None:
        code, out, err = await self.mrs("user", "add", "alice", "--generate", "--must-change")
        self.assertEqual((code, err), (0, ""))
        first, second = out.splitlines()
        self.assertEqual(first, "added user alice with role operator")
        prefix = "password (shown only now): "
        self.assertTrue(second.startswith(prefix))
        password = second[len(prefix):]
        self.assertEqual(len(password), 20)
        user = await (await self.store()).getUser("alice")
        self.assertTrue(verifyPassword(user.passwordHash, password))
        self.assertTrue(user.mustChangePassword)

    async def test_userAddErrors(self) -> None:
        await self.mrs("user", "add", "alice", stdin="long-enough-pw\n")
        await self.assertError(
            ["user", "add", "alice"], "user 'alice' already exists; choose another name",
            stdin="long-enough-pw\n",
        )
        await self.assertError(
            ["user", "add", "bad name"],
            "invalid user 'bad name': use 1 to 64 characters: letters, digits, '.', '_', '@' "
            "or '-', starting with a letter or digit",
            stdin="long-enough-pw\n",
        )
        await self.assertError(
            ["user", "add", "bob"],
            "standard input is empty; pipe the value as one line, or run on a terminal to be "
            "prompted",
        )
        code, out, err = await self.mrs("user", "add", "carol", "--role", "root")
        self.assertEqual(code, 2)
        self.assertIn("argument --role: invalid choice: 'root'", err)

    async def test_userLifecycle(self) -> None:
        await self.mrs("user", "add", "bob", stdin="long-enough-pw\n")
        await self.mrs("user", "add", "alice", "--role", "admin", stdin="long-enough-pw\n")
        await self.assertRun(["user", "disable", "bob"], "disabled user bob\n")
        await self.assertRun(["user", "passwd", "alice"], "changed the password of user alice\n",
                             stdin="new-long-enough-pw\n")
        await self.assertRun(["user", "role", "bob", "admin"], "user bob now has role admin\n")
        code, out, err = await self.mrs("user", "list")
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(lines[0], "NAME   ROLE   STATUS    PASSWORD  CREATED")
        self.assertTrue(lines[1].startswith("alice  admin  enabled   set       20"))
        self.assertTrue(lines[2].startswith("bob    admin  disabled  set       20"))
        self.assertEqual(len(lines), 3)
        await self.assertRun(["user", "enable", "bob"], "enabled user bob\n")
        await self.assertRun(
            ["user", "remove", "bob"],
            "removed user bob with its memberships, rules and API tokens\n",
        )
        store = await self.store()
        self.assertEqual([u.name for u in await store.listUsers()], ["alice"])
        alice = await store.getUser("alice")
        self.assertTrue(verifyPassword(alice.passwordHash, "new-long-enough-pw"))
        actions = [e.action for e in await store.listAudit()]
        self.assertEqual(
            actions,
            ["user.remove", "user.enable", "user.role", "user.password", "user.disable",
             "user.add", "user.add"],
        )

    async def test_userNotFound(self) -> None:
        """
        A missing user fails before any prompt, so no secret is read.
        """
        await self.assertError(["user", "passwd", "ghost"], "user 'ghost' not found",
                               stdin="long-enough-pw\n")
        await self.assertError(["user", "disable", "ghost"], "user 'ghost' not found")
        await self.assertError(["user", "remove", "ghost"], "user 'ghost' not found")

    # Devices

    async def test_deviceLifecycle(self) -> None:
        await self.assertRun(
            ["device", "add", "cam-01", "--name", "Van 3 dashcam", "--allow-plaintext"],
            "added device cam-01\n", stdin=SECRET + "\n",
        )
        await self.assertRun(["device", "add", "cam-02"], "added device cam-02\n",
                             stdin=SECRET + "\n")
        await self.assertRun(["device", "disable", "cam-02"], "disabled device cam-02\n")
        code, out, err = await self.mrs("device", "list")
        lines = out.splitlines()
        self.assertEqual(lines[0], "ID      NAME           STATUS    PLAINTEXT  CREATED")
        self.assertTrue(lines[1].startswith("cam-01  Van 3 dashcam  enabled   allowed    20"))
        self.assertTrue(lines[2].startswith("cam-02  cam-02         disabled  no         20"))
        await self.assertRun(["device", "enable", "cam-02"], "enabled device cam-02\n")
        await self.assertRun(
            ["device", "update", "cam-01", "--name", "Van 4", "--deny-plaintext"],
            "device cam-01: name 'Van 4', plaintext not allowed\n",
        )
        await self.assertError(
            ["device", "update", "cam-01"],
            "nothing to change; give --name, --allow-plaintext or --deny-plaintext",
        )
        await self.assertRun(["device", "secret", "cam-01"],
                             "changed the secret of device cam-01\n", stdin="other\n")
        await self.assertRun(["device", "remove", "cam-02"],
                             "removed device cam-02 with its memberships and rules\n")
        store = await self.store()
        [device] = await store.listDevices()
        self.assertEqual((device.deviceId, device.displayName, device.allowPlaintext),
                         ("cam-01", "Van 4", False))
        self.assertTrue(verifyPassword(device.secretHash, "other"))
        for entry in await store.listAudit():
            self.assertNotIn(SECRET, entry.detail)
            self.assertNotIn("other", entry.detail)

    async def test_deviceGenerate(self) -> None:
        code, out, err = await self.mrs("device", "add", "cam-01", "--generate")
        self.assertEqual((code, err), (0, ""))
        secret = out.splitlines()[1].removeprefix("secret (shown only now): ")
        code, out, err = await self.mrs("device", "secret", "cam-01", "--generate")
        newSecret = out.splitlines()[1].removeprefix("secret (shown only now): ")
        self.assertNotEqual(secret, newSecret)
        device = await (await self.store()).getDevice("cam-01")
        self.assertTrue(verifyPassword(device.secretHash, newSecret))
        self.assertFalse(verifyPassword(device.secretHash, secret))

    async def test_deviceErrors(self) -> None:
        await self.mrs("device", "add", "cam-01", stdin="s\n")
        await self.assertError(["device", "add", "cam-01"],
                               "device 'cam-01' already exists; choose another name",
                               stdin="s\n")
        await self.assertError(["device", "secret", "cam-99"], "device 'cam-99' not found",
                               stdin="s\n")
        await self.assertError(["device", "remove", "cam-99"], "device 'cam-99' not found")
        await self.assertError(
            ["device", "add", "cam-02", "--name", "tab\there"],
            "invalid display name 'tab\\there': remove the control characters", stdin="s\n",
        )

    # Groups

    async def test_groups(self) -> None:
        await self.mrs("user", "add", "alice", stdin="long-enough-pw\n")
        await self.mrs("user", "add", "bob", stdin="long-enough-pw\n")
        await self.mrs("device", "add", "cam-01", stdin="s\n")
        await self.assertRun(["group", "add", "user", "ops"], "added user group ops\n")
        await self.assertRun(["group", "add", "device", "vans"], "added device group vans\n")
        await self.assertRun(["group", "member-add", "user", "ops", "alice"],
                             "added user alice to user group ops\n")
        await self.assertRun(["group", "member-add", "user", "ops", "bob"],
                             "added user bob to user group ops\n")
        await self.assertRun(["group", "member-add", "device", "vans", "cam-01"],
                             "added device cam-01 to device group vans\n")
        await self.assertRun(
            ["group", "list"],
            "KIND    NAME  MEMBERS\nuser    ops   alice,bob\ndevice  vans  cam-01\n",
        )
        await self.assertRun(["group", "member-remove", "user", "ops", "bob"],
                             "removed user bob from user group ops\n")
        await self.assertRun(["group", "list", "user"], "KIND  NAME  MEMBERS\nuser  ops   alice\n")
        await self.assertRun(["group", "remove", "device", "vans"],
                             "removed device group vans and its rules\n")
        await self.assertRun(["group", "list", "device"], "KIND  NAME  MEMBERS\n")

    async def test_groupErrors(self) -> None:
        await self.mrs("user", "add", "alice", stdin="long-enough-pw\n")
        await self.mrs("group", "add", "user", "ops")
        await self.mrs("group", "member-add", "user", "ops", "alice")
        await self.assertError(["group", "add", "user", "ops"],
                               "user group 'ops' already exists; choose another name")
        await self.assertError(["group", "member-add", "user", "ops", "alice"],
                               "user 'alice' is already a member of user group 'ops'")
        await self.assertError(["group", "member-add", "user", "night", "alice"],
                               "user group 'night' not found")
        await self.assertError(["group", "member-add", "user", "ops", "ghost"],
                               "user 'ghost' not found")
        await self.assertError(["group", "member-remove", "device", "ops", "cam-01"],
                               "device group 'ops' not found")
        code, out, err = await self.mrs("group", "add", "team", "x")
        self.assertEqual(code, 2)
        self.assertIn("argument KIND: invalid choice: 'team'", err)

    # Rules

    async def populate(self) -> None:
        await self.mrs("user", "add", "alice", stdin="long-enough-pw\n")
        await self.mrs("device", "add", "cam-01", stdin="s\n")
        await self.mrs("group", "add", "user", "ops")
        await self.mrs("group", "add", "device", "vans")

    async def test_grantAndRules(self) -> None:
        await self.populate()
        await self.assertRun(
            ["grant", "group:ops", "group:vans", "video", "audio", "--days", "mon-fri",
             "--from", "08:00", "--to", "18:00"],
            "added rule 1: group:ops gets video,audio on group:vans, mon-fri 08:00-18:00\n",
        )
        await self.assertRun(
            ["grant", "alice", "cam-01", "location"],
            "added rule 2: user:alice gets location on device:cam-01, always\n",
        )
        await self.assertRun(
            ["grant", "user:alice", "device:cam-01", "talk,control"],
            "extended rule 2: user:alice gets location,control,talk on device:cam-01, always\n",
        )
        await self.assertRun(
            ["grant", "alice", "cam-01", "video", "--from", "22:00", "--to", "06:00"],
            "added rule 3: user:alice gets video on device:cam-01, all 22:00-06:00\n",
        )
        await self.assertRun(
            ["rules"],
            "ID  SUBJECT     TARGET         RIGHTS                 SCHEDULE\n"
            "1   group:ops   group:vans     video,audio            mon-fri 08:00-18:00\n"
            "2   user:alice  device:cam-01  location,control,talk  always\n"
            "3   user:alice  device:cam-01  video                  all 22:00-06:00\n",
        )
        store = await self.store()
        [rule] = [r for r in await store.listRules() if r.ruleId == 1]
        self.assertEqual(rule.schedule, Schedule(frozenset({0, 1, 2, 3, 4}), 480, 1080))
        entry = (await store.listAudit(action="rule.add"))[-1]
        self.assertEqual(entry.actor, "cli:tester")
        self.assertEqual(json.loads(entry.detail)["subject"], "user_group:ops")

    async def test_grantErrors(self) -> None:
        await self.populate()
        await self.assertError(
            ["grant", "alice", "cam-01", "video", "fly"],
            "invalid right 'fly': use one of: video, audio, location, control, talk",
        )
        await self.assertError(["grant", "ghost", "cam-01", "video"], "user 'ghost' not found")
        await self.assertError(["grant", "alice", "group:trucks", "video"],
                               "device group 'trucks' not found")
        code, out, err = await self.mrs("grant", "alice", "cam-01", "video", "--to", "25:00")
        self.assertEqual(code, 2)
        self.assertIn(
            "argument --to: invalid time '25:00': use HH:MM from 00:00 to 24:00", err
        )
        code, out, err = await self.mrs("grant", "alice", "cam-01")
        self.assertEqual(code, 2)
        self.assertIn("the following arguments are required: RIGHT", err)

    async def test_revoke(self) -> None:
        await self.populate()
        await self.mrs("grant", "alice", "cam-01", "video", "audio")
        await self.mrs("grant", "alice", "cam-01", "audio", "--days", "sat,sun")
        await self.mrs("grant", "group:ops", "cam-01", "video")
        await self.assertRun(
            ["revoke", "alice", "cam-01", "audio"],
            "narrowed rule 1: user:alice gets video on device:cam-01, always\n"
            "removed rule 2: user:alice gets audio on device:cam-01, sat,sun 00:00-24:00\n",
        )
        await self.assertRun(
            ["revoke", "3"],
            "removed rule 3: group:ops gets video on device:cam-01, always\n",
        )
        await self.assertRun(
            ["revoke", "user:alice", "device:cam-01"],
            "removed rule 1: user:alice gets video on device:cam-01, always\n",
        )
        await self.assertRun(["rules"], "ID  SUBJECT  TARGET  RIGHTS  SCHEDULE\n")

    async def test_revokeErrors(self) -> None:
        await self.populate()
        await self.mrs("grant", "alice", "cam-01", "video")
        await self.assertError(["revoke", "9"],
                               "rule 9 not found; 'mrs rules' lists the rules")
        await self.assertError(
            ["revoke", "alice", "cam-01", "audio"],
            "no rule grants user:alice audio on device:cam-01; 'mrs rules' lists the rules",
        )
        await self.assertError(
            ["revoke", "alice", "cam-01", "fly"],
            "invalid right 'fly': use one of: video, audio, location, control, talk",
        )
        await self.assertError(
            ["revoke", "alice"],
            "give a rule id, or a subject and a target with optional rights, such as "
            "'mrs revoke alice cam-01 audio'",
        )
        await self.assertError(
            ["revoke", "cam:x", "cam-01"],
            "invalid value 'cam:x': expected a user (alice or user:alice) or a user group "
            "(group:ops)",
        )

    async def test_audit(self) -> None:
        await self.populate()
        await self.mrs("grant", "alice", "cam-01", "video")
        code, out, err = await self.mrs("audit", "--action", "rule.", "--limit", "5")
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[0].split(), ["TIME", "ACTOR", "ACTION", "OBJECT", "DETAIL"])
        self.assertEqual(
            lines[1].split()[2:],
            ["cli:tester", "rule.add", "rule:1",
             '{"rights":["video"],"schedule":null,"subject":"user:alice",'
             '"target":"device:cam-01"}'],
        )
        code, out, err = await self.mrs("audit", "--actor", "cli:tester")
        self.assertEqual(len(out.splitlines()), 6)
        await self.assertError(
            ["audit", "--limit", "0"],
            "invalid audit limit '0': use a whole number from 1 to 10000",
        )

    async def test_duplicateBeforePrompt(self) -> None:
        """
        Adding an existing user or device fails before reading a secret.
        """
        await self.populate()
        code, out, err = await self.mrs("user", "add", "alice", terminal=[])
        self.assertEqual(
            (code, out, err),
            (1, "", "mrs: error: user 'alice' already exists; choose another name\n"),
        )
        code, out, err = await self.mrs("device", "add", "cam-01", terminal=[])
        self.assertEqual(
            (code, out, err),
            (1, "", "mrs: error: device 'cam-01' already exists; choose another name\n"),
        )

    async def test_cascadeThroughCommands(self) -> None:
        """
        Removing a user removes its rules and memberships.
        """
        await self.populate()
        await self.mrs("group", "member-add", "user", "ops", "alice")
        await self.mrs("grant", "alice", "cam-01", "video")
        await self.mrs("user", "remove", "alice")
        await self.assertRun(["rules"], "ID  SUBJECT  TARGET  RIGHTS  SCHEDULE\n")
        await self.assertRun(["group", "list", "user"], "KIND  NAME  MEMBERS\nuser  ops   -\n")


class EntryPointTests(SynchronousTestCase):
    """
    Run the real C{mrs} entry point, C{python -m mrs.cli}, in a subprocess.
    """

    def mrs(self, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(REPOSITORY)] + ([environment["PYTHONPATH"]] if "PYTHONPATH" in environment
                                 else [])
        )
        return subprocess.run(  # noqa: S603
            [sys.executable, "-m", "mrs.cli", "--data-dir", self.dataDir, *argv],
            input=stdin, capture_output=True, text=True, env=environment, timeout=60,
            check=False,
        )

    def test_endToEnd(self) -> None:
        """
        Exit codes 0, 1 and 2 with one-line messages; the password read from
        standard input never appears in any output or audit entry.
        """
        self.dataDir = self.mktemp()
        added = self.mrs("user", "add", "alice", "--role", "admin", stdin=PASSWORD + "\n")
        self.assertEqual(
            (added.returncode, added.stdout, added.stderr),
            (0, "added user alice with role admin\n", ""),
        )
        duplicate = self.mrs("user", "add", "alice", stdin=PASSWORD + "\n")
        self.assertEqual(
            (duplicate.returncode, duplicate.stdout, duplicate.stderr),
            (1, "", "mrs: error: user 'alice' already exists; choose another name\n"),
        )
        usage = self.mrs("grant", "device:cam-01", "cam-01", "video")
        self.assertEqual(usage.returncode, 2)
        self.assertEqual(usage.stdout, "")
        self.assertEqual(
            usage.stderr.splitlines()[-1],
            "mrs grant: error: argument SUBJECT: invalid value 'device:cam-01': expected a "
            "user (alice or user:alice) or a user group (group:ops)",
        )
        listed = self.mrs("user", "list")
        self.assertEqual(listed.returncode, 0)
        self.assertEqual(listed.stdout.splitlines()[0], "NAME   ROLE   STATUS   PASSWORD  CREATED")
        for result in (added, duplicate, usage, listed):
            self.assertNotIn(PASSWORD, result.stdout + result.stderr)
        connection = sqlite3.connect(Path(self.dataDir) / "mrs.sqlite3")
        try:
            details = connection.execute("SELECT actor, detail FROM audit_log").fetchall()
        finally:
            connection.close()
        self.assertEqual(len(details), 1)
        self.assertTrue(details[0][0].startswith("cli:"))
        self.assertNotIn(PASSWORD, details[0][1])

    def test_help(self) -> None:
        self.dataDir = self.mktemp()
        result = self.mrs("--help")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        self.assertIn("--data-dir PATH", result.stdout)
        for command in ("user", "device", "group", "grant", "revoke", "rules"):
            self.assertIn(f"    {command} ", result.stdout)
