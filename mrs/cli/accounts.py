"""
C{mrs user}, C{mrs device}, C{mrs group}, C{mrs grant}, C{mrs revoke},
C{mrs rules} and C{mrs audit}: accounts, devices, groups, permission rules
and the audit log.

Subjects and targets of rules are written C{user:alice} or C{group:ops}
(a user group) and C{device:cam-01} or C{group:vans} (a device group); a
bare name means a user as subject and a device as target.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from typing import Any

from mrs.cli import CommandContext, CommandError, commandGroup, formatTable, formatTime
from mrs.passwords import generatePassword, hashPassword, passwordProblem
from mrs.store.models import RIGHTS, ROLES, Rule, Schedule

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


# Parsing of rule arguments


def parseSubject(text: str) -> tuple[str, str]:
    """
    Parse a rule's subject: C{alice} or C{user:alice} for a user,
    C{group:ops} for a user group.

    @return: the store's (subject kind, name).
    @raise argparse.ArgumentTypeError: for another prefix or an empty name.
    """
    return _parseEnd(text, "user", "user_group", "a user (alice or user:alice) or a user "
                     "group (group:ops)")


def parseTarget(text: str) -> tuple[str, str]:
    """
    Parse a rule's target: C{cam-01} or C{device:cam-01} for a device,
    C{group:vans} for a device group.

    @return: the store's (target kind, name).
    @raise argparse.ArgumentTypeError: for another prefix or an empty name.
    """
    return _parseEnd(text, "device", "device_group", "a device (cam-01 or device:cam-01) or "
                     "a device group (group:vans)")


def _parseEnd(text: str, single: str, group: str, expected: str) -> tuple[str, str]:
    prefix, separator, name = text.partition(":")
    if not separator:
        kind, name = single, text
    elif prefix == single:
        kind = single
    elif prefix == "group":
        kind = group
    else:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected {expected}")
    if not name:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: the name is missing")
    return kind, name


def parseDays(text: str) -> frozenset[int]:
    """
    Parse weekdays such as C{mon-fri}, C{sat,sun}, C{fri-mon} (wrapping
    over the week end) or C{all}; 0 is Monday.

    @raise argparse.ArgumentTypeError: naming the part that is invalid.
    """
    days: set[int] = set()
    for part in text.lower().split(","):
        part = part.strip()
        if part == "all":
            days.update(range(7))
            continue
        first, _, last = part.partition("-")
        try:
            start = DAY_NAMES.index(first)
            end = DAY_NAMES.index(last) if last else start
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid days {text!r}: use mon, tue, wed, thu, fri, sat, sun, ranges such "
                f"as mon-fri, lists such as sat,sun, or all"
            )
        day = start
        days.add(day)
        while day != end:
            day = (day + 1) % 7
            days.add(day)
    return frozenset(days)


def parseTime(text: str) -> int:
    """
    Parse C{HH:MM} (00:00 to 24:00) into minutes after midnight.

    @raise argparse.ArgumentTypeError: for another form or range.
    """
    match = _TIME.match(text.strip())
    if match:
        hours, minutes = int(match.group(1)), int(match.group(2))
        if minutes < 60 and hours * 60 + minutes <= 24 * 60:
            return hours * 60 + minutes
    raise argparse.ArgumentTypeError(f"invalid time {text!r}: use HH:MM from 00:00 to 24:00")


def parseRights(words: Iterable[str]) -> list[str]:
    """
    Expand C{all} and split comma-separated rights; the store checks names.
    """
    rights: list[str] = []
    for word in words:
        for right in word.split(","):
            right = right.strip().lower()
            if right == "all":
                rights.extend(RIGHTS)
            elif right:
                rights.append(right)
    return rights


def scheduleFromArgs(args: argparse.Namespace) -> Schedule | None:
    """
    Build the schedule of C{--days}, C{--from} and C{--to}, or L{None} when
    none is given: the rule then applies at all times.
    """
    if args.days is None and args.start is None and args.end is None:
        return None
    return Schedule(
        days=args.days if args.days is not None else frozenset(range(7)),
        start=args.start if args.start is not None else 0,
        end=args.end if args.end is not None else 24 * 60,
    )


# Formatting


def formatEnd(kind: str, name: str) -> str:
    """
    Write a rule's subject or target the way C{mrs grant} reads it.
    """
    if kind.endswith("_group"):
        return f"group:{name}"
    return f"{kind}:{name}"


def formatDays(days: frozenset[int]) -> str:
    """
    Write weekdays compactly, such as C{mon-fri} or C{mon,wed,sat-sun}.
    """
    if days == frozenset(range(7)):
        return "all"
    parts = []
    ordered = sorted(days)
    index = 0
    while index < len(ordered):
        first = last = ordered[index]
        while index + 1 < len(ordered) and ordered[index + 1] == last + 1:
            index += 1
            last = ordered[index]
        if last - first >= 2:
            parts.append(f"{DAY_NAMES[first]}-{DAY_NAMES[last]}")
        else:
            parts.extend(DAY_NAMES[day] for day in range(first, last + 1))
        index += 1
    return ",".join(parts)


def formatMinutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def formatSchedule(schedule: Schedule | None) -> str:
    """
    Describe a rule's schedule, such as C{mon-fri 08:00-18:00}.
    """
    if schedule is None:
        return "always"
    return f"{formatDays(schedule.days)} {formatMinutes(schedule.start)}-" \
           f"{formatMinutes(schedule.end)}"


def formatRights(rights: Iterable[str]) -> str:
    """
    List rights in the order of L{RIGHTS}.
    """
    present = set(rights)
    return ",".join(right for right in RIGHTS if right in present)


def describeRule(rule: Rule) -> str:
    """
    Summarize a rule in one line for the output of grant and revoke.
    """
    return (
        f"rule {rule.ruleId}: {formatEnd(rule.subjectKind, rule.subject)} gets "
        f"{formatRights(rule.rights)} on {formatEnd(rule.targetKind, rule.target)}, "
        f"{formatSchedule(rule.schedule)}"
    )


def _secret(context: CommandContext, generate: bool, prompt: str) -> tuple[str, str | None]:
    """
    Return (secret, generated secret to print or None).
    """
    if generate:
        value = generatePassword()
        return value, value
    return context.readSecret(prompt), None


# Users


def _checkPassword(password: str) -> None:
    """
    @raise CommandError: the password is too weak for a user account.
    """
    problem = passwordProblem(password)
    if problem is not None:
        raise CommandError(f"{problem}; nothing changed")


async def userAdd(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    if await store.getUser(args.name) is not None:
        # Fail before prompting; the store checks again when adding.
        raise CommandError(f"user {args.name!r} already exists; choose another name")
    password, generated = _secret(context, args.generate, f"Password for {args.name}: ")
    _checkPassword(password)
    await store.addUser(
        args.name, args.role, hashPassword(password), context.actor,
        mustChangePassword=args.mustChange,
    )
    context.out.write(f"added user {args.name} with role {args.role}\n")
    if generated is not None:
        context.out.write(f"password (shown only now): {generated}\n")
    return 0


async def userList(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    rows = [
        (
            user.name,
            user.role,
            "enabled" if user.enabled else "disabled",
            "must change" if user.mustChangePassword else "set",
            formatTime(user.created),
        )
        for user in await store.listUsers()
    ]
    context.out.write(formatTable(("NAME", "ROLE", "STATUS", "PASSWORD", "CREATED"), rows))
    return 0


async def userPasswd(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    if await store.getUser(args.name) is None:
        # Check before prompting, so the operator does not type a password
        # for an account that does not exist.
        raise CommandError(f"user {args.name!r} not found")
    password, generated = _secret(context, args.generate, f"New password for {args.name}: ")
    _checkPassword(password)
    await store.setUserPassword(
        args.name, hashPassword(password), context.actor, mustChangePassword=args.mustChange
    )
    context.out.write(f"changed the password of user {args.name}\n")
    if generated is not None:
        context.out.write(f"password (shown only now): {generated}\n")
    return 0


async def userEnable(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    await store.setUserEnabled(args.name, args.enabled, context.actor)
    state = "enabled" if args.enabled else "disabled"
    context.out.write(f"{state} user {args.name}\n")
    return 0


async def userRole(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    await store.setUserRole(args.name, args.role, context.actor)
    context.out.write(f"user {args.name} now has role {args.role}\n")
    return 0


async def userRemove(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    await store.removeUser(args.name, context.actor)
    context.out.write(f"removed user {args.name} with its memberships, rules and API tokens\n")
    return 0


# Devices


async def deviceAdd(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    if await store.getDevice(args.deviceId) is not None:
        raise CommandError(f"device {args.deviceId!r} already exists; choose another name")
    secret, generated = _secret(context, args.generate, f"Secret for device {args.deviceId}: ")
    displayName = args.displayName if args.displayName is not None else args.deviceId
    await store.addDevice(
        args.deviceId, displayName, hashPassword(secret), context.actor,
        allowPlaintext=args.allowPlaintext,
    )
    context.out.write(f"added device {args.deviceId}\n")
    if generated is not None:
        context.out.write(f"secret (shown only now): {generated}\n")
    return 0


async def deviceList(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    rows = [
        (
            device.deviceId,
            device.displayName,
            "enabled" if device.enabled else "disabled",
            "allowed" if device.allowPlaintext else "no",
            formatTime(device.created),
        )
        for device in await store.listDevices()
    ]
    context.out.write(formatTable(("ID", "NAME", "STATUS", "PLAINTEXT", "CREATED"), rows))
    return 0


async def deviceSecret(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    if await store.getDevice(args.deviceId) is None:
        raise CommandError(f"device {args.deviceId!r} not found")
    secret, generated = _secret(
        context, args.generate, f"New secret for device {args.deviceId}: "
    )
    await store.setDeviceSecret(args.deviceId, hashPassword(secret), context.actor)
    context.out.write(f"changed the secret of device {args.deviceId}\n")
    if generated is not None:
        context.out.write(f"secret (shown only now): {generated}\n")
    return 0


async def deviceUpdate(args: argparse.Namespace, context: CommandContext) -> int:
    if args.displayName is None and args.allowPlaintext is None:
        raise CommandError("nothing to change; give --name, --allow-plaintext or --deny-plaintext")
    store = await context.openStore()
    device = await store.updateDevice(
        args.deviceId, context.actor, displayName=args.displayName,
        allowPlaintext=args.allowPlaintext,
    )
    plaintext = "allowed" if device.allowPlaintext else "not allowed"
    context.out.write(
        f"device {device.deviceId}: name {device.displayName!r}, plaintext {plaintext}\n"
    )
    return 0


async def deviceEnable(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    await store.setDeviceEnabled(args.deviceId, args.enabled, context.actor)
    state = "enabled" if args.enabled else "disabled"
    context.out.write(f"{state} device {args.deviceId}\n")
    return 0


async def deviceRemove(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    await store.removeDevice(args.deviceId, context.actor)
    context.out.write(f"removed device {args.deviceId} with its memberships and rules\n")
    return 0


# Groups


async def groupAdd(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    await store.addGroup(args.kind, args.name, context.actor)
    context.out.write(f"added {args.kind} group {args.name}\n")
    return 0


async def groupRemove(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    await store.removeGroup(args.kind, args.name, context.actor)
    context.out.write(f"removed {args.kind} group {args.name} and its rules\n")
    return 0


async def groupList(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    kinds = [args.kind] if args.kind else ["user", "device"]
    rows = []
    for kind in kinds:
        for group in await store.listGroups(kind):
            rows.append((kind, group.name, ",".join(group.members) or "-"))
    context.out.write(formatTable(("KIND", "NAME", "MEMBERS"), rows))
    return 0


async def groupMember(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    if args.add:
        await store.addGroupMember(args.kind, args.group, args.member, context.actor)
        context.out.write(f"added {args.kind} {args.member} to {args.kind} group {args.group}\n")
    else:
        await store.removeGroupMember(args.kind, args.group, args.member, context.actor)
        context.out.write(
            f"removed {args.kind} {args.member} from {args.kind} group {args.group}\n"
        )
    return 0


# Rules


async def grant(args: argparse.Namespace, context: CommandContext) -> int:
    subjectKind, subject = args.subject
    targetKind, target = args.target
    rights = parseRights(args.rights)
    schedule = scheduleFromArgs(args)
    store = await context.openStore()
    existing = [
        rule
        for rule in await store.listRules()
        if (rule.subjectKind, rule.subject, rule.targetKind, rule.target)
        == (subjectKind, subject, targetKind, target)
        and rule.schedule == schedule
    ]
    if existing:
        [rule] = existing
        rule = await store.setRuleRights(rule.ruleId, set(rule.rights) | set(rights), context.actor)
        context.out.write(f"extended {describeRule(rule)}\n")
    else:
        rule = await store.addRule(
            subjectKind, subject, targetKind, target, rights, context.actor, schedule
        )
        context.out.write(f"added {describeRule(rule)}\n")
    return 0


async def revoke(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    if len(args.words) == 1 and args.words[0].isdigit():
        ruleId = int(args.words[0])
        rules = {rule.ruleId: rule for rule in await store.listRules()}
        if ruleId not in rules:
            raise CommandError(f"rule {ruleId} not found; 'mrs rules' lists the rules")
        await store.removeRule(ruleId, context.actor)
        context.out.write(f"removed {describeRule(rules[ruleId])}\n")
        return 0
    if len(args.words) < 2:
        raise CommandError(
            "give a rule id, or a subject and a target with optional rights, such as "
            "'mrs revoke alice cam-01 audio'"
        )
    try:
        subjectKind, subject = parseSubject(args.words[0])
        targetKind, target = parseTarget(args.words[1])
    except argparse.ArgumentTypeError as e:
        raise CommandError(str(e))
    rights = set(parseRights(args.words[2:]))
    unknown = sorted(rights - set(RIGHTS))
    if unknown:
        raise CommandError(f"invalid right {unknown[0]!r}: use one of: {', '.join(RIGHTS)}")
    matching = [
        rule
        for rule in await store.listRules()
        if (rule.subjectKind, rule.subject, rule.targetKind, rule.target)
        == (subjectKind, subject, targetKind, target)
        and (not rights or rule.rights & rights)
    ]
    if not matching:
        requested = formatRights(rights) if rights else "any right"
        raise CommandError(
            f"no rule grants {formatEnd(subjectKind, subject)} {requested} on "
            f"{formatEnd(targetKind, target)}; 'mrs rules' lists the rules"
        )
    for rule in matching:
        remaining = rule.rights - rights if rights else frozenset()
        if remaining:
            updated = await store.setRuleRights(rule.ruleId, remaining, context.actor)
            context.out.write(f"narrowed {describeRule(updated)}\n")
        else:
            await store.removeRule(rule.ruleId, context.actor)
            context.out.write(f"removed {describeRule(rule)}\n")
    return 0


async def listAudit(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    entries = await store.listAudit(
        actor=args.actor, action=args.action, object=args.object, limit=args.limit
    )
    rows = [
        (formatTime(entry.time), entry.actor, entry.action, entry.object, entry.detail)
        for entry in entries
    ]
    context.out.write(formatTable(("TIME", "ACTOR", "ACTION", "OBJECT", "DETAIL"), rows))
    return 0


async def listRules(args: argparse.Namespace, context: CommandContext) -> int:
    store = await context.openStore()
    rows = [
        (
            rule.ruleId,
            formatEnd(rule.subjectKind, rule.subject),
            formatEnd(rule.targetKind, rule.target),
            formatRights(rule.rights),
            formatSchedule(rule.schedule),
        )
        for rule in await store.listRules()
    ]
    context.out.write(formatTable(("ID", "SUBJECT", "TARGET", "RIGHTS", "SCHEDULE"), rows))
    return 0


# Registration


def register(subparsers: Any) -> None:
    """
    Add the C{user}, C{device}, C{group}, C{grant}, C{revoke}, C{rules} and
    C{audit} commands to the C{mrs} argument parser.
    """
    _registerUsers(subparsers)
    _registerDevices(subparsers)
    _registerGroups(subparsers)
    _registerRules(subparsers)


def _addGenerate(parser: argparse.ArgumentParser, secretKind: str) -> None:
    parser.add_argument(
        "--generate",
        action="store_true",
        help=f"generate a random {secretKind} and print it once, instead of reading it from a "
        f"prompt or one line of standard input",
    )


def _registerUsers(subparsers: Any) -> None:
    users = commandGroup(
        subparsers, "user", help="add, list, change or remove user accounts",
        description="User accounts log in to the admin web UI (role admin) and as monitors.",
    )
    add = users.add_parser(
        "add", help="add a user; the password is read from a prompt or standard input"
    )
    add.add_argument("name", metavar="NAME", help="login name: letters, digits, . _ @ -")
    add.add_argument(
        "--role", choices=ROLES, default="operator",
        help="admin (admin web UI and API, sees every device) or operator (monitor only); "
        "default operator",
    )
    add.add_argument(
        "--must-change", dest="mustChange", action="store_true",
        help="make the user choose a new password at the next admin web UI login",
    )
    _addGenerate(add, "password")
    add.set_defaults(func=userAdd)

    users.add_parser("list", help="list users as a table").set_defaults(func=userList)

    passwd = users.add_parser(
        "passwd", help="set a user's password; ends the user's sessions"
    )
    passwd.add_argument("name", metavar="NAME", help="the user")
    passwd.add_argument(
        "--must-change", dest="mustChange", action="store_true",
        help="make the user choose a new password at the next admin web UI login",
    )
    _addGenerate(passwd, "password")
    passwd.set_defaults(func=userPasswd)

    for name, enabled, summary in (
        ("enable", True, "let a disabled user log in again"),
        ("disable", False, "stop a user from logging in and end the user's sessions"),
    ):
        command = users.add_parser(name, help=summary)
        command.add_argument("name", metavar="NAME", help="the user")
        command.set_defaults(func=userEnable, enabled=enabled)

    role = users.add_parser("role", help="change a user's role")
    role.add_argument("name", metavar="NAME", help="the user")
    role.add_argument("role", metavar="ROLE", choices=ROLES, help="admin or operator")
    role.set_defaults(func=userRole)

    remove = users.add_parser(
        "remove", help="delete a user with its group memberships, rules and API tokens"
    )
    remove.add_argument("name", metavar="NAME", help="the user")
    remove.set_defaults(func=userRemove)


def _registerDevices(subparsers: Any) -> None:
    devices = commandGroup(
        subparsers, "device", help="add, list, change or remove capture devices",
        description="Capture devices log in with an id and a secret and publish media.",
    )
    add = devices.add_parser(
        "add", help="add a device; the secret is read from a prompt or standard input"
    )
    add.add_argument("deviceId", metavar="ID", help="device id: letters, digits, . _ @ -")
    add.add_argument(
        "--name", dest="displayName", metavar="DISPLAY",
        help="display name shown to monitors (default: the id)",
    )
    add.add_argument(
        "--allow-plaintext", dest="allowPlaintext", action="store_true",
        help="let this device log in without TLS even when allow_plaintext is false",
    )
    _addGenerate(add, "secret")
    add.set_defaults(func=deviceAdd)

    devices.add_parser("list", help="list devices as a table").set_defaults(func=deviceList)

    secret = devices.add_parser(
        "secret", help="set a device's secret; ends the device's connection"
    )
    secret.add_argument("deviceId", metavar="ID", help="the device")
    _addGenerate(secret, "secret")
    secret.set_defaults(func=deviceSecret)

    update = devices.add_parser(
        "update", help="change a device's display name or plaintext exception"
    )
    update.add_argument("deviceId", metavar="ID", help="the device")
    update.add_argument(
        "--name", dest="displayName", metavar="DISPLAY", help="new display name"
    )
    plaintext = update.add_mutually_exclusive_group()
    plaintext.add_argument(
        "--allow-plaintext", dest="allowPlaintext", action="store_const", const=True,
        help="let this device log in without TLS",
    )
    plaintext.add_argument(
        "--deny-plaintext", dest="allowPlaintext", action="store_const", const=False,
        help="require TLS for this device unless allow_plaintext is true",
    )
    update.set_defaults(func=deviceUpdate, allowPlaintext=None)

    for name, enabled, summary in (
        ("enable", True, "let a disabled device log in again"),
        ("disable", False, "stop a device from logging in and end its connection"),
    ):
        command = devices.add_parser(name, help=summary)
        command.add_argument("deviceId", metavar="ID", help="the device")
        command.set_defaults(func=deviceEnable, enabled=enabled)

    remove = devices.add_parser("remove", help="delete a device with its memberships and rules")
    remove.add_argument("deviceId", metavar="ID", help="the device")
    remove.set_defaults(func=deviceRemove)


def _registerGroups(subparsers: Any) -> None:
    groups = commandGroup(
        subparsers, "group", help="manage user groups and device groups",
        description="Rules may name a user group as subject and a device group as target.",
    )
    kindHelp = "user for a group of users, device for a group of devices"
    add = groups.add_parser("add", help="add an empty group")
    add.add_argument("kind", metavar="KIND", choices=("user", "device"), help=kindHelp)
    add.add_argument("name", metavar="NAME", help="group name: letters, digits, . _ @ -")
    add.set_defaults(func=groupAdd)

    remove = groups.add_parser("remove", help="delete a group and the rules that name it")
    remove.add_argument("kind", metavar="KIND", choices=("user", "device"), help=kindHelp)
    remove.add_argument("name", metavar="NAME", help="the group")
    remove.set_defaults(func=groupRemove)

    listing = groups.add_parser("list", help="list groups and their members as a table")
    listing.add_argument(
        "kind", metavar="KIND", nargs="?", choices=("user", "device"),
        help="list only user groups or only device groups (default: both)",
    )
    listing.set_defaults(func=groupList)

    for name, add_, summary in (
        ("member-add", True, "put a user or device into a group"),
        ("member-remove", False, "take a user or device out of a group"),
    ):
        command = groups.add_parser(name, help=summary)
        command.add_argument("kind", metavar="KIND", choices=("user", "device"), help=kindHelp)
        command.add_argument("group", metavar="GROUP", help="the group")
        command.add_argument("member", metavar="MEMBER", help="the user name or device id")
        command.set_defaults(func=groupMember, add=add_)


def _registerRules(subparsers: Any) -> None:
    grantParser = subparsers.add_parser(
        "grant",
        help="grant rights on a device or device group to a user or user group",
        description="Grant rights.  A rule with the same subject, target and schedule is "
        "extended instead of duplicated.  Example: mrs grant group:ops group:vans video "
        "audio location --days mon-fri --from 08:00 --to 18:00",
    )
    grantParser.add_argument(
        "subject", metavar="SUBJECT", type=parseSubject,
        help="who: alice or user:alice for a user, group:ops for a user group",
    )
    grantParser.add_argument(
        "target", metavar="TARGET", type=parseTarget,
        help="on what: cam-01 or device:cam-01 for a device, group:vans for a device group",
    )
    grantParser.add_argument(
        "rights", metavar="RIGHT", nargs="+",
        help=f"one or more of: {', '.join(RIGHTS)}, or all",
    )
    grantParser.add_argument(
        "--days", type=parseDays, metavar="DAYS",
        help="weekdays the rule applies, such as mon-fri or sat,sun (default: every day "
        "when --from or --to is given)",
    )
    grantParser.add_argument(
        "--from", dest="start", type=parseTime, metavar="HH:MM",
        help="time of day the rule starts applying, in the server's time_zone (default 00:00)",
    )
    grantParser.add_argument(
        "--to", dest="end", type=parseTime, metavar="HH:MM",
        help="time of day the rule stops applying (default 24:00); earlier than --from "
        "spans midnight",
    )
    grantParser.set_defaults(func=grant)

    revokeParser = subparsers.add_parser(
        "revoke",
        help="remove a rule by id, or remove rights from the rules between a subject and "
        "a target",
        description="'mrs revoke 7' removes rule 7.  'mrs revoke alice cam-01' removes every "
        "rule from alice to cam-01; 'mrs revoke alice cam-01 audio' removes only the audio "
        "right and removes rules left without rights.",
    )
    revokeParser.add_argument(
        "words", metavar="RULE-ID | SUBJECT TARGET [RIGHT ...]", nargs="+",
        help="a rule id from 'mrs rules', or a subject and target written as for grant, "
        "with the rights to remove (default: all)",
    )
    revokeParser.set_defaults(func=revoke)

    rulesParser = subparsers.add_parser("rules", help="list permission rules as a table")
    rulesParser.set_defaults(func=listRules)

    auditParser = subparsers.add_parser(
        "audit", help="list audit log entries as a table, newest first"
    )
    auditParser.add_argument("--actor", help="only entries by this exact actor, such as cli:root")
    auditParser.add_argument(
        "--action", metavar="PREFIX", help="only actions starting with this text, such as user."
    )
    auditParser.add_argument(
        "--object", metavar="TEXT", help="only objects containing this text, such as cam-01"
    )
    auditParser.add_argument(
        "--limit", type=int, default=50, help="the number of entries to show (default 50)"
    )
    auditParser.set_defaults(func=listAudit)


