"""
Tests for L{mrs.store}: one contract, L{StoreContractMixin}, run against
L{MemoryStore} and L{SQLiteStore} on a real file, plus the SQLite store's
own behaviour (file mode, WAL, foreign keys, migrations).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mrs.store.errors import AlreadyExists, InvalidValue, NotFound, SchemaTooNew, StoreError
from mrs.store.interface import IStore
from mrs.store.memory import MemoryStore
from mrs.store.migrations import MIGRATIONS, SCHEMA_VERSION, Migration
from mrs.store.models import ApiToken, Device, Group, Rule, Schedule, User
from mrs.store.sqlite import SQLiteStore

BAD_NAME_FIX = (
    "use 1 to 64 characters: letters, digits, '.', '_', '@' or '-', "
    "starting with a letter or digit"
)
START = 1_700_000_000.0


def opening(store: Any) -> Any:
    """
    Open C{store}; typed loosely, so a failure's exception can be examined.
    """
    return store.open()


class StoreContractMixin:
    """
    The behaviour every L{IStore} shares.  A subclass implements
    L{createStore} and mixes this into a L{TestCase}.
    """

    now: float
    store: Any

    def createStore(self, clock: Any) -> Any:
        raise NotImplementedError()

    def setUp(self) -> Any:
        self.now = START
        self.store = self.createStore(lambda: self.now)
        d = self.store.open()
        self.addCleanup(self.store.close)  # type: ignore[attr-defined]
        return d

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds

    async def assertRaisesAsync(self, exceptionType: type[Exception], d: Any, message: str) -> Any:
        """
        Assert that C{d} fails with C{exceptionType} and exactly C{message}.
        """
        error = await self.assertFailure(d, exceptionType)  # type: ignore[attr-defined]
        self.assertEqual(str(error), message)  # type: ignore[attr-defined]
        return error

    async def assertUnchanged(self, generation: int, auditCount: int) -> None:
        """
        Assert that a failed call bumped nothing and audited nothing.
        """
        self.assertEqual(await self.store.generation(), generation)  # type: ignore[attr-defined]
        entries = await self.store.listAudit(limit=10000)
        self.assertEqual(len(entries), auditCount)  # type: ignore[attr-defined]

    async def lastAudit(self) -> tuple[str, str, str, dict[str, Any], float]:
        [entry] = await self.store.listAudit(limit=1)
        return entry.actor, entry.action, entry.object, json.loads(entry.detail), entry.time

    async def populate(self) -> None:
        """
        Add alice (admin) and bob (operator), devices cam-01 and cam-02,
        user group ops with alice, device group vans with cam-01.
        """
        await self.store.addUser("alice", "admin", "hash-a", "test")
        await self.store.addUser("bob", "operator", "hash-b", "test")
        await self.store.addDevice("cam-01", "Camera 1", "secret-hash-1", "test")
        await self.store.addDevice("cam-02", "Camera 2", "secret-hash-2", "test")
        await self.store.addGroup("user", "ops", "test")
        await self.store.addGroup("device", "vans", "test")
        await self.store.addGroupMember("user", "ops", "alice", "test")
        await self.store.addGroupMember("device", "vans", "cam-01", "test")

    # Opening

    def test_providesInterface(self) -> None:
        self.assertTrue(verifyObject(IStore, self.store))  # type: ignore[attr-defined]

    async def test_emptyStore(self) -> None:
        """
        A new store has generation 0, no records and an empty audit log.
        """
        self.assertEqual(await self.store.generation(), 0)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listUsers(), [])  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listDevices(), [])  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listGroups("user"), [])  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listGroups("device"), [])  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listRules(), [])  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listAudit(), [])  # type: ignore[attr-defined]
        snapshot = await self.store.snapshot()
        self.assertEqual(snapshot.generation, 0)  # type: ignore[attr-defined]
        self.assertEqual(snapshot.users, ())  # type: ignore[attr-defined]
        self.assertEqual(snapshot.rules, ())  # type: ignore[attr-defined]

    # Users

    async def test_addUser(self) -> None:
        """
        addUser returns the new user, stamped with the clock, writes one
        audit entry and bumps the generation.
        """
        user = await self.store.addUser("alice", "admin", "hash-a", "cli:root", True)
        expected = User(
            name="alice", role="admin", passwordHash="hash-a", enabled=True,
            mustChangePassword=True, created=START, changed=START, credentialsVersion=1,
        )
        self.assertEqual(user, expected)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.getUser("alice"), expected)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.generation(), 1)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            await self.lastAudit(),
            ("cli:root", "user.add", "user:alice",
             {"role": "admin", "mustChangePassword": True}, START),
        )

    async def test_addUserAuditHasNoHash(self) -> None:
        await self.store.addUser("alice", "admin", "hash-a", "test")
        [entry] = await self.store.listAudit()
        self.assertNotIn("hash-a", entry.detail)  # type: ignore[attr-defined]

    async def test_addUserDuplicate(self) -> None:
        """
        A second user with the same name fails with AlreadyExists naming it,
        and changes nothing.
        """
        await self.store.addUser("alice", "admin", "hash-a", "test")
        await self.assertRaisesAsync(
            AlreadyExists,
            self.store.addUser("alice", "operator", "hash-b", "test"),
            "user 'alice' already exists; choose another name",
        )
        await self.assertUnchanged(1, 1)
        self.assertEqual((await self.store.getUser("alice")).role, "admin")  # type: ignore[attr-defined]

    async def test_addUserInvalid(self) -> None:
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addUser("bad name", "admin", "hash", "test"),
            f"invalid user 'bad name': {BAD_NAME_FIX}",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addUser("-alice", "admin", "hash", "test"),
            f"invalid user '-alice': {BAD_NAME_FIX}",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addUser("a" * 65, "admin", "hash", "test"),
            f"invalid user '{'a' * 65}': {BAD_NAME_FIX}",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addUser("alice", "root", "hash", "test"),
            "invalid role 'root': use one of: admin, operator",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addUser("alice", "admin", "", "test"),
            "invalid password hash '': give the hash as a non-empty text",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addUser("alice", "admin", "hash", ""),
            "invalid actor '': give a non-empty text",
        )
        await self.assertUnchanged(0, 0)

    async def test_addUserLongestName(self) -> None:
        name = "a" * 64
        user = await self.store.addUser(name, "operator", "hash", "test")
        self.assertEqual(user.name, name)  # type: ignore[attr-defined]

    async def test_getUserMissing(self) -> None:
        self.assertIsNone(await self.store.getUser("nobody"))  # type: ignore[attr-defined]

    async def test_listUsersSorted(self) -> None:
        for name in ("carol", "alice", "bob"):
            await self.store.addUser(name, "operator", "hash", "test")
        users = await self.store.listUsers()
        self.assertEqual([u.name for u in users], ["alice", "bob", "carol"])  # type: ignore[attr-defined]

    async def test_setUserPassword(self) -> None:
        """
        A new password replaces the hash, bumps the credentials version and
        records whether a change is forced, without the hash in the audit.
        """
        await self.store.addUser("alice", "admin", "hash-a", "test", True)
        self.tick()
        user = await self.store.setUserPassword("alice", "hash-new", "admin:carol")
        self.assertEqual(user.passwordHash, "hash-new")  # type: ignore[attr-defined]
        self.assertEqual(user.credentialsVersion, 2)  # type: ignore[attr-defined]
        self.assertFalse(user.mustChangePassword)  # type: ignore[attr-defined]
        self.assertEqual(user.created, START)  # type: ignore[attr-defined]
        self.assertEqual(user.changed, START + 1)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.getUser("alice"), user)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.generation(), 2)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            await self.lastAudit(),
            ("admin:carol", "user.password", "user:alice", {"mustChangePassword": False},
             START + 1),
        )

    async def test_setUserPasswordMissing(self) -> None:
        await self.assertRaisesAsync(
            NotFound, self.store.setUserPassword("nobody", "hash", "test"),
            "user 'nobody' not found",
        )
        await self.assertUnchanged(0, 0)

    async def test_setUserEnabled(self) -> None:
        """
        Disabling a user bumps its credentials version; enabling does not.
        """
        await self.store.addUser("alice", "admin", "hash-a", "test")
        user = await self.store.setUserEnabled("alice", False, "test")
        self.assertFalse(user.enabled)  # type: ignore[attr-defined]
        self.assertEqual(user.credentialsVersion, 2)  # type: ignore[attr-defined]
        self.assertEqual((await self.lastAudit())[1:3], ("user.disable", "user:alice"))  # type: ignore[attr-defined]
        user = await self.store.setUserEnabled("alice", True, "test")
        self.assertTrue(user.enabled)  # type: ignore[attr-defined]
        self.assertEqual(user.credentialsVersion, 2)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4], ("user.enable", "user:alice", {})
        )
        self.assertEqual(await self.store.generation(), 3)  # type: ignore[attr-defined]
        await self.assertRaisesAsync(
            NotFound, self.store.setUserEnabled("nobody", True, "test"), "user 'nobody' not found"
        )

    async def test_setUserRole(self) -> None:
        await self.store.addUser("alice", "admin", "hash-a", "test")
        user = await self.store.setUserRole("alice", "operator", "test")
        self.assertEqual(user.role, "operator")  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4],
            ("user.role", "user:alice", {"role": "operator", "previous": "admin"}),
        )
        await self.assertRaisesAsync(
            InvalidValue, self.store.setUserRole("alice", "boss", "test"),
            "invalid role 'boss': use one of: admin, operator",
        )
        await self.assertRaisesAsync(
            NotFound, self.store.setUserRole("nobody", "admin", "test"), "user 'nobody' not found"
        )
        await self.assertUnchanged(2, 2)

    async def test_removeUser(self) -> None:
        """
        Removing a user removes its memberships, rules and API tokens, and
        the audit entry lists them.
        """
        await self.populate()
        await self.store.addRule("user", "alice", "device", "cam-01", ["video"], "test")
        kept = await self.store.addRule("user", "bob", "device", "cam-01", ["audio"], "test")
        await self.store.addApiToken("alice", "laptop", "token-hash-1", "test")
        generation = await self.store.generation()
        await self.store.removeUser("alice", "cli:root")
        self.assertIsNone(await self.store.getUser("alice"))  # type: ignore[attr-defined]
        [ops] = await self.store.listGroups("user")
        self.assertEqual(ops.members, ())  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listRules(), [kept])  # type: ignore[attr-defined]
        self.assertIsNone(await self.store.findApiToken("token-hash-1"))  # type: ignore[attr-defined]
        self.assertEqual(await self.store.generation(), generation + 1)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[:4],
            ("cli:root", "user.remove", "user:alice",
             {"groups": ["ops"], "rules": [1], "tokens": 1}),
        )
        await self.assertRaisesAsync(
            NotFound, self.store.removeUser("alice", "test"), "user 'alice' not found"
        )

    # Devices

    async def test_addDevice(self) -> None:
        device = await self.store.addDevice("cam-01", "Van 3 dashcam", "secret-hash", "test", True)
        expected = Device(
            deviceId="cam-01", displayName="Van 3 dashcam", secretHash="secret-hash",
            enabled=True, allowPlaintext=True, created=START, changed=START,
            credentialsVersion=1,
        )
        self.assertEqual(device, expected)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.getDevice("cam-01"), expected)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listDevices(), [expected])  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            await self.lastAudit(),
            ("test", "device.add", "device:cam-01",
             {"displayName": "Van 3 dashcam", "allowPlaintext": True}, START),
        )
        self.assertEqual(await self.store.generation(), 1)  # type: ignore[attr-defined]

    async def test_addDeviceDuplicate(self) -> None:
        await self.store.addDevice("cam-01", "", "secret-hash", "test")
        await self.assertRaisesAsync(
            AlreadyExists,
            self.store.addDevice("cam-01", "", "secret-hash", "test"),
            "device 'cam-01' already exists; choose another name",
        )
        await self.assertUnchanged(1, 1)

    async def test_addDeviceInvalid(self) -> None:
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addDevice("cam/01", "", "secret-hash", "test"),
            f"invalid device 'cam/01': {BAD_NAME_FIX}",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addDevice("cam-01", "line\nbreak", "secret-hash", "test"),
            "invalid display name 'line\\nbreak': remove the control characters",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addDevice("cam-01", "", "", "test"),
            "invalid secret hash '': give the hash as a non-empty text",
        )
        await self.assertUnchanged(0, 0)

    async def test_getDeviceMissing(self) -> None:
        self.assertIsNone(await self.store.getDevice("cam-99"))  # type: ignore[attr-defined]

    async def test_listDevicesSorted(self) -> None:
        for name in ("cam-2", "cam-10", "cam-1"):
            await self.store.addDevice(name, "", "secret-hash", "test")
        devices = await self.store.listDevices()
        self.assertEqual(  # type: ignore[attr-defined]
            [d.deviceId for d in devices], ["cam-1", "cam-10", "cam-2"]
        )

    async def test_updateDevice(self) -> None:
        await self.store.addDevice("cam-01", "Old", "secret-hash", "test")
        self.tick()
        device = await self.store.updateDevice("cam-01", "test", displayName="New")
        self.assertEqual((device.displayName, device.allowPlaintext), ("New", False))  # type: ignore[attr-defined]
        self.assertEqual(device.changed, START + 1)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4],
            ("device.update", "device:cam-01", {"displayName": "New"}),
        )
        device = await self.store.updateDevice("cam-01", "test", allowPlaintext=True)
        self.assertEqual((device.displayName, device.allowPlaintext), ("New", True))  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[3], {"allowPlaintext": True}
        )
        self.assertEqual(await self.store.getDevice("cam-01"), device)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.generation(), 3)  # type: ignore[attr-defined]

    async def test_updateDeviceNothing(self) -> None:
        """
        An update that changes nothing returns the device and is no change.
        """
        added = await self.store.addDevice("cam-01", "Old", "secret-hash", "test")
        self.assertEqual(await self.store.updateDevice("cam-01", "test"), added)  # type: ignore[attr-defined]
        await self.assertUnchanged(1, 1)

    async def test_updateDeviceMissing(self) -> None:
        await self.assertRaisesAsync(
            NotFound, self.store.updateDevice("cam-99", "test", displayName="x"),
            "device 'cam-99' not found",
        )

    async def test_setDeviceSecret(self) -> None:
        await self.store.addDevice("cam-01", "", "secret-hash", "test")
        device = await self.store.setDeviceSecret("cam-01", "secret-hash-new", "test")
        self.assertEqual(device.secretHash, "secret-hash-new")  # type: ignore[attr-defined]
        self.assertEqual(device.credentialsVersion, 2)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4], ("device.secret", "device:cam-01", {})
        )
        await self.assertRaisesAsync(
            NotFound, self.store.setDeviceSecret("cam-99", "x", "test"),
            "device 'cam-99' not found",
        )

    async def test_setDeviceEnabled(self) -> None:
        await self.store.addDevice("cam-01", "", "secret-hash", "test")
        device = await self.store.setDeviceEnabled("cam-01", False, "test")
        self.assertEqual((device.enabled, device.credentialsVersion), (False, 2))  # type: ignore[attr-defined]
        self.assertEqual((await self.lastAudit())[1], "device.disable")  # type: ignore[attr-defined]
        device = await self.store.setDeviceEnabled("cam-01", True, "test")
        self.assertEqual((device.enabled, device.credentialsVersion), (True, 2))  # type: ignore[attr-defined]
        self.assertEqual((await self.lastAudit())[1], "device.enable")  # type: ignore[attr-defined]
        await self.assertRaisesAsync(
            NotFound, self.store.setDeviceEnabled("cam-99", True, "test"),
            "device 'cam-99' not found",
        )

    async def test_removeDevice(self) -> None:
        """
        Removing a device removes its memberships and rules.
        """
        await self.populate()
        await self.store.addRule("user", "alice", "device", "cam-01", ["video"], "test")
        kept = await self.store.addRule("user", "alice", "device", "cam-02", ["video"], "test")
        await self.store.removeDevice("cam-01", "test")
        self.assertIsNone(await self.store.getDevice("cam-01"))  # type: ignore[attr-defined]
        [vans] = await self.store.listGroups("device")
        self.assertEqual(vans.members, ())  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listRules(), [kept])  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4],
            ("device.remove", "device:cam-01", {"groups": ["vans"], "rules": [1]}),
        )
        await self.assertRaisesAsync(
            NotFound, self.store.removeDevice("cam-01", "test"), "device 'cam-01' not found"
        )

    # Groups

    async def test_addGroup(self) -> None:
        """
        User groups and device groups have separate names.
        """
        group = await self.store.addGroup("user", "ops", "test")
        self.assertEqual(group, Group(kind="user", name="ops", members=()))  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4], ("group.add", "user_group:ops", {})
        )
        group = await self.store.addGroup("device", "ops", "test")
        self.assertEqual(group, Group(kind="device", name="ops", members=()))  # type: ignore[attr-defined]
        self.assertEqual((await self.lastAudit())[2], "device_group:ops")  # type: ignore[attr-defined]
        self.assertEqual(await self.store.generation(), 2)  # type: ignore[attr-defined]

    async def test_addGroupInvalid(self) -> None:
        await self.store.addGroup("user", "ops", "test")
        await self.assertRaisesAsync(
            AlreadyExists, self.store.addGroup("user", "ops", "test"),
            "user group 'ops' already exists; choose another name",
        )
        await self.assertRaisesAsync(
            InvalidValue, self.store.addGroup("team", "ops", "test"),
            "invalid group kind 'team': use one of: user, device",
        )
        await self.assertRaisesAsync(
            InvalidValue, self.store.addGroup("device", "a b", "test"),
            f"invalid device group 'a b': {BAD_NAME_FIX}",
        )
        await self.assertUnchanged(1, 1)

    async def test_listGroups(self) -> None:
        await self.populate()
        await self.store.addGroup("user", "everyone", "test")
        await self.store.addGroupMember("user", "everyone", "bob", "test")
        await self.store.addGroupMember("user", "everyone", "alice", "test")
        self.assertEqual(  # type: ignore[attr-defined]
            await self.store.listGroups("user"),
            [Group("user", "everyone", ("alice", "bob")), Group("user", "ops", ("alice",))],
        )
        self.assertEqual(  # type: ignore[attr-defined]
            await self.store.listGroups("device"), [Group("device", "vans", ("cam-01",))]
        )
        await self.assertRaisesAsync(
            InvalidValue, self.store.listGroups("users"),
            "invalid group kind 'users': use one of: user, device",
        )

    async def test_addGroupMember(self) -> None:
        await self.populate()
        group = await self.store.addGroupMember("user", "ops", "bob", "admin:alice")
        self.assertEqual(group, Group("user", "ops", ("alice", "bob")))  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[:4],
            ("admin:alice", "group.member_add", "user_group:ops", {"member": "user:bob"}),
        )

    async def test_addGroupMemberErrors(self) -> None:
        await self.populate()
        generation = await self.store.generation()
        await self.assertRaisesAsync(
            NotFound, self.store.addGroupMember("user", "nobody", "bob", "test"),
            "user group 'nobody' not found",
        )
        await self.assertRaisesAsync(
            NotFound, self.store.addGroupMember("user", "ops", "carol", "test"),
            "user 'carol' not found",
        )
        await self.assertRaisesAsync(
            NotFound, self.store.addGroupMember("device", "vans", "alice", "test"),
            "device 'alice' not found",
        )
        await self.assertRaisesAsync(
            AlreadyExists, self.store.addGroupMember("user", "ops", "alice", "test"),
            "user 'alice' is already a member of user group 'ops'",
        )
        await self.assertRaisesAsync(
            InvalidValue, self.store.addGroupMember("thing", "ops", "alice", "test"),
            "invalid group kind 'thing': use one of: user, device",
        )
        await self.assertUnchanged(generation, 8)

    async def test_removeGroupMember(self) -> None:
        await self.populate()
        group = await self.store.removeGroupMember("device", "vans", "cam-01", "test")
        self.assertEqual(group, Group("device", "vans", ()))  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4],
            ("group.member_remove", "device_group:vans", {"member": "device:cam-01"}),
        )
        await self.assertRaisesAsync(
            NotFound, self.store.removeGroupMember("device", "vans", "cam-01", "test"),
            "device 'cam-01' not found in device group 'vans'",
        )
        await self.assertRaisesAsync(
            NotFound, self.store.removeGroupMember("device", "trucks", "cam-01", "test"),
            "device group 'trucks' not found",
        )

    async def test_removeGroup(self) -> None:
        """
        Removing a group removes its memberships and every rule that names
        it, as subject or as target; its members stay.
        """
        await self.populate()
        await self.store.addRule("user_group", "ops", "device", "cam-01", ["video"], "test")
        await self.store.addRule("user", "bob", "device_group", "vans", ["audio"], "test")
        kept = await self.store.addRule("user", "bob", "device", "cam-02", ["audio"], "test")
        await self.store.removeGroup("user", "ops", "test")
        self.assertEqual(await self.store.listGroups("user"), [])  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4],
            ("group.remove", "user_group:ops", {"members": ["alice"], "rules": [1]}),
        )
        await self.store.removeGroup("device", "vans", "test")
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[3], {"members": ["cam-01"], "rules": [2]}
        )
        self.assertEqual(await self.store.listRules(), [kept])  # type: ignore[attr-defined]
        self.assertIsNotNone(await self.store.getUser("alice"))  # type: ignore[attr-defined]
        await self.assertRaisesAsync(
            NotFound, self.store.removeGroup("user", "ops", "test"),
            "user group 'ops' not found",
        )

    async def test_groupRecreatedIsEmpty(self) -> None:
        """
        A group removed and added again starts without members or rules.
        """
        await self.populate()
        await self.store.addRule("user_group", "ops", "device", "cam-01", ["video"], "test")
        await self.store.removeGroup("user", "ops", "test")
        group = await self.store.addGroup("user", "ops", "test")
        self.assertEqual(group.members, ())  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listRules(), [])  # type: ignore[attr-defined]

    # Rules

    async def test_addRule(self) -> None:
        await self.populate()
        self.tick(5)
        rule = await self.store.addRule(
            "user", "bob", "device", "cam-02", ["video", "location"], "cli:root"
        )
        expected = Rule(
            ruleId=1, subjectKind="user", subject="bob", targetKind="device", target="cam-02",
            rights=frozenset({"video", "location"}), schedule=None, created=START + 5,
        )
        self.assertEqual(rule, expected)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listRules(), [expected])  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[:4],
            ("cli:root", "rule.add", "rule:1",
             {"subject": "user:bob", "target": "device:cam-02",
              "rights": ["location", "video"], "schedule": None}),
        )

    async def test_addRuleGroupsWithSchedule(self) -> None:
        """
        A rule between groups keeps its schedule: days, start and end.
        """
        await self.populate()
        schedule = Schedule(days=frozenset({0, 1, 2, 3, 4}), start=8 * 60, end=18 * 60)
        rule = await self.store.addRule(
            "user_group", "ops", "device_group", "vans", ["control", "talk"], "test", schedule
        )
        self.assertEqual(rule.schedule, schedule)  # type: ignore[attr-defined]
        self.assertEqual((rule.subjectKind, rule.subject), ("user_group", "ops"))  # type: ignore[attr-defined]
        self.assertEqual((rule.targetKind, rule.target), ("device_group", "vans"))  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listRules(), [rule])  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[3]["schedule"],
            {"days": [0, 1, 2, 3, 4], "start": 480, "end": 1080},
        )

    async def test_addRuleOvernightSchedule(self) -> None:
        await self.populate()
        schedule = Schedule(days=frozenset({6}), start=22 * 60, end=6 * 60)
        rule = await self.store.addRule(
            "user", "bob", "device", "cam-01", ["video"], "test", schedule
        )
        [stored] = await self.store.listRules()
        self.assertEqual(stored.schedule, schedule)  # type: ignore[attr-defined]
        self.assertEqual(stored, rule)  # type: ignore[attr-defined]

    async def test_addRuleMissingEnds(self) -> None:
        await self.populate()
        generation = await self.store.generation()
        cases = [
            (("user", "carol", "device", "cam-01"), "user 'carol' not found"),
            (("user_group", "night", "device", "cam-01"), "user group 'night' not found"),
            (("user", "bob", "device", "cam-99"), "device 'cam-99' not found"),
            (("user", "bob", "device_group", "trucks"), "device group 'trucks' not found"),
        ]
        for (subjectKind, subject, targetKind, target), message in cases:
            await self.assertRaisesAsync(
                NotFound,
                self.store.addRule(subjectKind, subject, targetKind, target, ["video"], "test"),
                message,
            )
        await self.assertUnchanged(generation, 8)

    async def test_addRuleInvalid(self) -> None:
        await self.populate()
        generation = await self.store.generation()
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addRule("user", "bob", "device", "cam-01", ["video", "fly"], "test"),
            "invalid right 'fly': use one of: video, audio, location, control, talk",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addRule("user", "bob", "device", "cam-01", [], "test"),
            "invalid rights '': give at least one of: video, audio, location, control, talk",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addRule("user", "bob", "device", "cam-01", "video", "test"),
            "invalid rights 'video': give a list of rights",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addRule("device", "cam-02", "device", "cam-01", ["video"], "test"),
            "invalid subject kind 'device': use one of: user, user_group",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addRule("user", "bob", "user", "alice", ["video"], "test"),
            "invalid target kind 'user': use one of: device, device_group",
        )
        await self.assertRaisesAsync(
            InvalidValue,
            self.store.addRule("user", "bob", "device", "cam 01", ["video"], "test"),
            f"invalid device 'cam 01': {BAD_NAME_FIX}",
        )
        await self.assertUnchanged(generation, 8)

    async def test_addRuleDuplicate(self) -> None:
        """
        A second rule with the same subject, target and schedule fails with
        AlreadyExists naming the existing rule; another schedule is fine.
        """
        await self.populate()
        await self.store.addRule("user", "bob", "device", "cam-01", ["video"], "test")
        await self.assertRaisesAsync(
            AlreadyExists,
            self.store.addRule("user", "bob", "device", "cam-01", ["audio"], "test"),
            "rule '1' already exists; it has the same subject, target and schedule; "
            "change that rule's rights instead",
        )
        schedule = Schedule(days=frozenset({5, 6}))
        rule = await self.store.addRule(
            "user", "bob", "device", "cam-01", ["audio"], "test", schedule
        )
        self.assertEqual(rule.ruleId, 2)  # type: ignore[attr-defined]

    async def test_ruleIdsNotReused(self) -> None:
        await self.populate()
        first = await self.store.addRule("user", "bob", "device", "cam-01", ["video"], "test")
        await self.store.removeRule(first.ruleId, "test")
        second = await self.store.addRule("user", "bob", "device", "cam-01", ["video"], "test")
        self.assertEqual(second.ruleId, 2)  # type: ignore[attr-defined]

    async def test_setRuleRights(self) -> None:
        await self.populate()
        rule = await self.store.addRule("user", "bob", "device", "cam-01", ["video"], "test")
        updated = await self.store.setRuleRights(rule.ruleId, ["audio", "video"], "test")
        self.assertEqual(updated.rights, frozenset({"audio", "video"}))  # type: ignore[attr-defined]
        self.assertEqual(updated.created, rule.created)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listRules(), [updated])  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4],
            ("rule.update", "rule:1", {"rights": ["audio", "video"], "previous": ["video"]}),
        )
        await self.assertRaisesAsync(
            NotFound, self.store.setRuleRights(7, ["video"], "test"), "rule '7' not found"
        )
        await self.assertRaisesAsync(
            InvalidValue, self.store.setRuleRights(1, ["x"], "test"),
            "invalid right 'x': use one of: video, audio, location, control, talk",
        )

    async def test_removeRule(self) -> None:
        await self.populate()
        rule = await self.store.addRule("user", "bob", "device", "cam-01", ["video"], "test")
        await self.store.removeRule(rule.ruleId, "cli:root")
        self.assertEqual(await self.store.listRules(), [])  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[:4],
            ("cli:root", "rule.remove", "rule:1",
             {"subject": "user:bob", "target": "device:cam-01", "rights": ["video"],
              "schedule": None}),
        )
        await self.assertRaisesAsync(
            NotFound, self.store.removeRule(rule.ruleId, "test"), "rule '1' not found"
        )
        await self.assertRaisesAsync(
            InvalidValue, self.store.removeRule(0, "test"),
            "invalid rule id '0': use a whole number from 1 up",
        )

    # Settings

    async def test_settings(self) -> None:
        """
        Settings round-trip; the audit entry names the key but not the value.
        """
        self.assertIsNone(await self.store.getSetting("tls.passphrase"))  # type: ignore[attr-defined]
        await self.store.setSetting("tls.passphrase", "s3cret", "test")
        self.assertEqual(await self.store.getSetting("tls.passphrase"), "s3cret")  # type: ignore[attr-defined]
        await self.store.setSetting("tls.passphrase", "other", "test")
        self.assertEqual(await self.store.getSetting("tls.passphrase"), "other")  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4], ("setting.set", "setting:tls.passphrase", {})
        )
        for entry in await self.store.listAudit():
            self.assertNotIn("s3cret", entry.detail)  # type: ignore[attr-defined]
        self.assertEqual(await self.store.generation(), 2)  # type: ignore[attr-defined]
        await self.assertRaisesAsync(
            InvalidValue, self.store.setSetting("", "x", "test"),
            "invalid setting key '': give a non-empty text",
        )

    # API tokens

    async def test_apiTokens(self) -> None:
        """
        Tokens are recorded by hash; finding one notes its use without
        counting as a change.
        """
        await self.populate()
        token = await self.store.addApiToken("alice", "laptop", "token-hash-1", "admin:alice")
        expected = ApiToken(
            tokenId=1, user="alice", label="laptop", tokenHash="token-hash-1",
            created=START, lastUsed=None,
        )
        self.assertEqual(token, expected)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4],
            ("token.add", "token:1", {"user": "alice", "label": "laptop"}),
        )
        self.assertEqual(await self.store.listApiTokens("alice"), [expected])  # type: ignore[attr-defined]
        self.assertEqual(await self.store.listApiTokens("bob"), [])  # type: ignore[attr-defined]
        generation = await self.store.generation()
        self.tick(10)
        found = await self.store.findApiToken("token-hash-1")
        self.assertEqual(found.lastUsed, START + 10)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.store.listApiTokens("alice"))[0].lastUsed, START + 10
        )
        self.assertIsNone(await self.store.findApiToken("token-hash-2"))  # type: ignore[attr-defined]
        await self.assertUnchanged(generation, 9)
        await self.store.removeApiToken(1, "test")
        self.assertEqual(await self.store.listApiTokens("alice"), [])  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            (await self.lastAudit())[1:4],
            ("token.remove", "token:1", {"user": "alice", "label": "laptop"}),
        )

    async def test_apiTokenErrors(self) -> None:
        await self.populate()
        await self.store.addApiToken("alice", "laptop", "token-hash-1", "test")
        await self.assertRaisesAsync(
            AlreadyExists, self.store.addApiToken("bob", "phone", "token-hash-1", "test"),
            "API token 'phone' already exists; generate a new token",
        )
        await self.assertRaisesAsync(
            NotFound, self.store.addApiToken("carol", "phone", "token-hash-2", "test"),
            "user 'carol' not found",
        )
        await self.assertRaisesAsync(
            InvalidValue, self.store.addApiToken("bob", "", "token-hash-2", "test"),
            "invalid token label '': give a non-empty text",
        )
        await self.assertRaisesAsync(
            NotFound, self.store.listApiTokens("carol"), "user 'carol' not found"
        )
        await self.assertRaisesAsync(
            NotFound, self.store.removeApiToken(5, "test"), "API token '5' not found"
        )

    # Audit log

    async def test_auditExternal(self) -> None:
        """
        audit() appends an entry without bumping the generation.
        """
        entry = await self.store.audit("admin:alice", "tls.install", "tls:certificate", '{"a":1}')
        self.assertEqual(  # type: ignore[attr-defined]
            (entry.entryId, entry.time, entry.actor, entry.action, entry.object, entry.detail),
            (1, START, "admin:alice", "tls.install", "tls:certificate", '{"a":1}'),
        )
        self.assertEqual(await self.store.listAudit(), [entry])  # type: ignore[attr-defined]
        self.assertEqual(await self.store.generation(), 0)  # type: ignore[attr-defined]
        await self.assertRaisesAsync(
            InvalidValue, self.store.audit("admin", "", "x"),
            "invalid audit action '': give a non-empty text",
        )

    async def test_listAuditFilters(self) -> None:
        """
        listAudit filters by exact actor, action prefix, object substring and
        time, newest first, up to the limit.
        """
        await self.store.addUser("alice", "admin", "h", "cli:root")
        self.tick()
        await self.store.addUser("bob", "operator", "h", "admin:alice")
        self.tick()
        await self.store.addDevice("cam-01", "", "h", "admin:alice")
        self.tick()
        await self.store.setUserEnabled("bob", False, "cli:root")

        def actions(entries: list[Any]) -> list[tuple[str, str]]:
            return [(e.action, e.object) for e in entries]

        self.assertEqual(  # type: ignore[attr-defined]
            actions(await self.store.listAudit()),
            [("user.disable", "user:bob"), ("device.add", "device:cam-01"),
             ("user.add", "user:bob"), ("user.add", "user:alice")],
        )
        self.assertEqual(  # type: ignore[attr-defined]
            actions(await self.store.listAudit(actor="cli:root")),
            [("user.disable", "user:bob"), ("user.add", "user:alice")],
        )
        self.assertEqual(await self.store.listAudit(actor="cli"), [])  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            actions(await self.store.listAudit(action="user.")),
            [("user.disable", "user:bob"), ("user.add", "user:bob"), ("user.add", "user:alice")],
        )
        self.assertEqual(  # type: ignore[attr-defined]
            actions(await self.store.listAudit(object="bob")),
            [("user.disable", "user:bob"), ("user.add", "user:bob")],
        )
        self.assertEqual(  # type: ignore[attr-defined]
            actions(await self.store.listAudit(since=START + 2)),
            [("user.disable", "user:bob"), ("device.add", "device:cam-01")],
        )
        self.assertEqual(  # type: ignore[attr-defined]
            actions(await self.store.listAudit(action="user.add", object="user:", limit=1)),
            [("user.add", "user:bob")],
        )
        await self.assertRaisesAsync(
            InvalidValue, self.store.listAudit(limit=0),
            "invalid audit limit '0': use a whole number from 1 to 10000",
        )

    async def test_listAuditLikeCharacters(self) -> None:
        """
        Object filters match text literally, not as SQL patterns.
        """
        await self.store.addUser("a_b", "admin", "h", "test")
        await self.store.addUser("axb", "admin", "h", "test")
        entries = await self.store.listAudit(object="a_b")
        self.assertEqual([e.object for e in entries], ["user:a_b"])  # type: ignore[attr-defined]

    # Generation and snapshot

    async def test_generationCountsChanges(self) -> None:
        await self.populate()
        self.assertEqual(await self.store.generation(), 8)  # type: ignore[attr-defined]

    async def test_snapshot(self) -> None:
        """
        The snapshot contains the generation, users, devices, groups of both
        kinds with members, and rules.
        """
        await self.populate()
        rule = await self.store.addRule("user_group", "ops", "device_group", "vans",
                                        ["video"], "test")
        snapshot = await self.store.snapshot()
        self.assertEqual(snapshot.generation, 9)  # type: ignore[attr-defined]
        self.assertEqual([u.name for u in snapshot.users], ["alice", "bob"])  # type: ignore[attr-defined]
        self.assertEqual(snapshot.users[0], await self.store.getUser("alice"))  # type: ignore[attr-defined]
        self.assertEqual([d.deviceId for d in snapshot.devices], ["cam-01", "cam-02"])  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            snapshot.groups,
            (Group("user", "ops", ("alice",)), Group("device", "vans", ("cam-01",))),
        )
        self.assertEqual(snapshot.rules, (rule,))  # type: ignore[attr-defined]


class MemoryStoreTests(StoreContractMixin, TestCase):
    def createStore(self, clock: Any) -> MemoryStore:
        return MemoryStore(clock=clock)


class SQLiteStoreTests(StoreContractMixin, TestCase):
    def createStore(self, clock: Any) -> SQLiteStore:
        directory = Path(self.mktemp())
        directory.mkdir()
        self.databasePath = directory / "mrs.sqlite3"
        return SQLiteStore(self.databasePath, clock=clock)


class SQLiteFileTests(TestCase):
    """
    What only the SQLite store does: the file, its pragmas and migrations.
    """

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        self.path = directory / "mrs.sqlite3"

    async def openStore(self, **kwargs: Any) -> Any:
        store = SQLiteStore(self.path, **kwargs)
        self.addCleanup(store.close)
        await store.open()
        return store

    def rawQuery(self, sql: str) -> list[Any]:
        connection = sqlite3.connect(self.path)
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()

    async def test_fileMode(self) -> None:
        await self.openStore()
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    async def test_existingFileModeKept(self) -> None:
        """
        The store sets the mode only on a file it creates.
        """
        self.path.touch(mode=0o640)
        os.chmod(self.path, 0o640)
        await self.openStore()
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o640)

    async def test_walAndForeignKeys(self) -> None:
        """
        The file is in WAL mode and the store's connection enforces foreign
        keys.
        """
        store = await self.openStore()
        self.assertEqual(self.rawQuery("PRAGMA journal_mode"), [("wal",)])
        self.assertEqual(await store._pool.runQuery("PRAGMA foreign_keys"), [(1,)])
        failure = await self.assertFailure(
            store._pool.runOperation(
                "INSERT INTO user_group_members (group_id, user_name) VALUES (99, 'ghost')"
            ),
            sqlite3.IntegrityError,
        )
        self.assertEqual(str(failure), "FOREIGN KEY constraint failed")

    async def test_missingDirectory(self) -> None:
        missing = self.path.parent / "missing" / "mrs.sqlite3"
        store = SQLiteStore(missing)
        error = await self.assertFailure(opening(store), StoreError)
        self.assertEqual(
            str(error),
            f"{missing}: directory {str(missing.parent)!r} not found; "
            f"create it with mode 0700 or set data_dir",
        )
        await store.close()

    async def test_freshFileSchema(self) -> None:
        """
        A new file records each migration once, at the current version.
        """
        store = await self.openStore()
        self.assertEqual(await store.schemaVersion(), SCHEMA_VERSION)
        self.assertEqual(
            self.rawQuery("SELECT version, description FROM schema_version"),
            [(m.version, m.description) for m in MIGRATIONS],
        )

    async def test_reopenKeepsData(self) -> None:
        """
        Reopening a file applies no migration twice and keeps the data.
        """
        store = await self.openStore(clock=lambda: START)
        await store.addUser("alice", "admin", "hash-a", "test")
        await store.close()
        before = self.rawQuery("SELECT version, applied FROM schema_version")
        store = await self.openStore(clock=lambda: START + 100)
        self.assertEqual(self.rawQuery("SELECT version, applied FROM schema_version"), before)
        self.assertEqual((await store.getUser("alice")).passwordHash, "hash-a")
        self.assertEqual(await store.generation(), 1)

    async def test_newMigrationApplied(self) -> None:
        """
        A file at version 1 gets only the migrations after it, in order.
        """
        store = await self.openStore()
        await store.addUser("alice", "admin", "hash-a", "test")
        await store.close()
        later = (
            Migration(2, "add a note column", ("ALTER TABLE users ADD COLUMN note TEXT",)),
            Migration(3, "fill the note", ("UPDATE users SET note = 'migrated'",)),
        )
        store = await self.openStore(migrations=MIGRATIONS + later)
        self.assertEqual(await store.schemaVersion(), 3)
        self.assertEqual(self.rawQuery("SELECT name, note FROM users"), [("alice", "migrated")])
        self.assertEqual(
            [row[0] for row in self.rawQuery("SELECT version FROM schema_version")], [1, 2, 3]
        )

    async def test_failedMigrationRolledBack(self) -> None:
        """
        A migration that fails leaves the file at its previous version.
        """
        store = await self.openStore()
        await store.close()
        broken = (Migration(2, "broken", ("ALTER TABLE users ADD COLUMN note TEXT",
                                          "SELECT * FROM no_such_table")),)
        store = SQLiteStore(self.path, migrations=MIGRATIONS + broken)
        error = await self.assertFailure(opening(store), StoreError)
        self.assertEqual(str(error), f"{self.path}: database error: no such table: no_such_table")
        await store.close()
        self.assertEqual(self.rawQuery("SELECT MAX(version) FROM schema_version"), [(1,)])
        columns = [row[1] for row in self.rawQuery("PRAGMA table_info(users)")]
        self.assertNotIn("note", columns)

    async def test_newerSchemaRejected(self) -> None:
        """
        A file written by a newer version fails with SchemaTooNew and stays
        byte for byte as it was.
        """
        store = await self.openStore()
        await store.addUser("alice", "admin", "hash-a", "test")
        await store.close()
        connection = sqlite3.connect(self.path)
        connection.execute(
            "INSERT INTO schema_version (version, description, applied) VALUES (99, 'x', 0)"
        )
        connection.commit()
        connection.close()
        before = self.path.read_bytes()
        store = SQLiteStore(self.path)
        error = await self.assertFailure(opening(store), SchemaTooNew)
        self.assertEqual(
            str(error),
            f"{self.path}: database schema version 99 is newer than this server supports "
            f"({SCHEMA_VERSION}); run the newer MRS version that wrote it, or restore a "
            f"backup made by this version",
        )
        await store.close()
        self.assertEqual(self.path.read_bytes(), before)

    async def test_otherProcessSeesChanges(self) -> None:
        """
        A second store on the same file, as the command line opens while the
        server runs, reads the first one's changes and generation.
        """
        server = await self.openStore()
        cli = await self.openStore()
        await cli.addUser("alice", "admin", "hash-a", "cli:root")
        self.assertEqual(await server.generation(), 1)
        self.assertEqual((await server.getUser("alice")).name, "alice")
        await server.addDevice("cam-01", "", "h", "admin:alice")
        self.assertEqual(await cli.generation(), 2)


POSTGRES_URL = os.environ.get("MRS_TEST_POSTGRES_URL")
POSTGRES_SKIP = (
    None if POSTGRES_URL else
    "set MRS_TEST_POSTGRES_URL to a PostgreSQL database URL, such as "
    "postgresql://postgres@127.0.0.1/mrs_test, to run the PostgreSQL store tests; each "
    "test works in its own schema and drops it afterwards"
)


class PostgresStoreTests(StoreContractMixin, TestCase):
    """
    The contract on PostgreSQL, each test in a fresh schema.
    """

    skip = POSTGRES_SKIP
    url = POSTGRES_URL or ""

    def createStore(self, clock: Any) -> Any:
        import psycopg2

        from mrs.store.postgres import PostgresStore

        schema = f"mrs_test_{os.getpid()}_{id(self)}"
        connection = psycopg2.connect(self.url)
        connection.autocommit = True
        connection.cursor().execute(f'CREATE SCHEMA "{schema}"')

        def dropSchema() -> None:
            connection.cursor().execute(f'DROP SCHEMA "{schema}" CASCADE')
            connection.close()

        # Cleanups run last-added first: the store closes, then this runs.
        self.addCleanup(dropSchema)
        return PostgresStore(
            self.url, clock=clock, connectOptions={"options": f"-c search_path={schema}"}
        )

    async def test_newerSchemaRejected(self) -> None:
        """
        A database written by a newer version fails with SchemaTooNew.
        """
        from mrs.store.postgres import PostgresStore

        await self.store._pool.runOperation(
            "INSERT INTO schema_version (version, description, applied) VALUES (99, 'x', 0)"
        )
        options = self.store._pool.connkw
        other = PostgresStore(self.url, connectOptions=options)
        error = await self.assertFailure(opening(other), SchemaTooNew)
        self.assertEqual(error.found, 99)
        await other.close()


class RedactTests(TestCase):
    def test_passwordRemoved(self) -> None:
        from mrs.store.postgres import _redact

        self.assertEqual(
            _redact("postgresql://mrs:s3cret@db.example:5432/mrs"),
            "postgresql://mrs:***@db.example:5432/mrs",
        )
        self.assertEqual(_redact("postgresql://mrs@db/mrs"), "postgresql://mrs@db/mrs")
        self.assertEqual(_redact("postgresql:///mrs"), "postgresql:///mrs")


class SQLiteOpeningTests(TestCase):
    """
    Calls made while the store opens, after a failed open and after close.
    """

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        self.path = directory / "mrs.sqlite3"

    async def test_callsWaitForOpen(self) -> None:
        """
        A call made right after open(), before the migrations finish, runs
        once the schema exists.
        """
        store = SQLiteStore(self.path)
        self.addCleanup(store.close)
        opened = store.open()
        generation = store.generation()
        await opened
        self.assertEqual(await generation, 0)

    async def test_callsAfterFailedOpen(self) -> None:
        missing = self.path.parent / "missing" / "mrs.sqlite3"
        store = SQLiteStore(missing)
        opened = store.open()
        waiting = store.listUsers()
        await self.assertFailure(opened, StoreError)
        error = await self.assertFailure(waiting, StoreError)
        self.assertEqual(
            str(error),
            f"{missing}: the store is not open because opening it failed: {missing}: "
            f"directory {str(missing.parent)!r} not found; create it with mode 0700 or set "
            f"data_dir",
        )

    async def test_callsAfterClose(self) -> None:
        store = SQLiteStore(self.path)
        await store.open()
        await store.close()
        error = await self.assertFailure(store.listUsers(), StoreError)
        self.assertEqual(str(error), f"{self.path}: the store is closed")
