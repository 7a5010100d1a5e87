"""
The SQL implementation of L{IStore}, shared by the SQLite and PostgreSQL
stores, on a L{twisted.enterprise.adbapi.ConnectionPool}.

Every method runs as one transaction in the pool's threads, so no query
blocks the reactor; only L{SQLStore.close} waits for running queries.  A
change, its audit entry and the bump of the generation counter commit
together or not at all.  Subclasses supply the connection pool, the
placeholder style and how transactions begin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from mrs.store import common
from mrs.store.errors import (
    AlreadyExists,
    InvalidValue,
    NotFound,
    SchemaTooNew,
    StoreError,
)
from mrs.store.migrations import (
    MIGRATIONS,
    SCHEMA_VERSION_TABLE,
    Migration,
    render,
)
from mrs.store.models import (
    ApiToken,
    AuditEntry,
    Device,
    Group,
    Rule,
    Schedule,
    Snapshot,
    User,
    validateName,
    validateRights,
)

_T = TypeVar("_T")

# adbapi hands interactions a Transaction that proxies the DB-API cursor.
# The f-strings marked "noqa: S608" only insert the constant column lists
# and table names below; every value goes in as a bound parameter.
Cursor = Any

_USER_COLUMNS = (
    "name, role, password_hash, enabled, must_change_password, created, changed,"
    " credentials_version"
)
_DEVICE_COLUMNS = (
    "device_id, display_name, secret_hash, enabled, allow_plaintext, created, changed,"
    " credentials_version"
)
_TOKEN_COLUMNS = "token_id, user_name, label, token_hash, created, last_used"  # noqa: S105
_AUDIT_COLUMNS = "entry_id, time, actor, action, object, detail"
_RULE_QUERY = (
    "SELECT r.rule_id, r.subject_user, sg.name, r.target_device, tg.name, r.rights,"
    " r.days, r.start_minute, r.end_minute, r.created"
    " FROM rules r"
    " LEFT JOIN member_groups sg ON sg.group_id = r.subject_group"
    " LEFT JOIN member_groups tg ON tg.group_id = r.target_group"
)


def _user(row: Sequence[Any]) -> User:
    return User(
        name=row[0],
        role=row[1],
        passwordHash=row[2],
        enabled=bool(row[3]),
        mustChangePassword=bool(row[4]),
        created=row[5],
        changed=row[6],
        credentialsVersion=row[7],
    )


def _device(row: Sequence[Any]) -> Device:
    return Device(
        deviceId=row[0],
        displayName=row[1],
        secretHash=row[2],
        enabled=bool(row[3]),
        allowPlaintext=bool(row[4]),
        created=row[5],
        changed=row[6],
        credentialsVersion=row[7],
    )


def _token(row: Sequence[Any]) -> ApiToken:
    return ApiToken(
        tokenId=row[0], user=row[1], label=row[2], tokenHash=row[3],
        created=row[4], lastUsed=row[5],
    )


def _auditEntry(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(
        entryId=row[0], time=row[1], actor=row[2], action=row[3], object=row[4], detail=row[5]
    )


def _rule(row: Sequence[Any]) -> Rule:
    ruleId, subjectUser, subjectGroup, targetDevice, targetGroup = row[:5]
    rights, days, start, end, created = row[5:]
    schedule = None
    if days is not None:
        schedule = Schedule(days=common.decodeDays(days), start=start, end=end)
    return Rule(
        ruleId=ruleId,
        subjectKind="user" if subjectUser is not None else "user_group",
        subject=subjectUser if subjectUser is not None else subjectGroup,
        targetKind="device" if targetDevice is not None else "device_group",
        target=targetDevice if targetDevice is not None else targetGroup,
        rights=common.decodeRights(rights),
        schedule=schedule,
        created=created,
    )


class SQLStore:
    """
    The dialect-independent part of the SQL stores.

    Subclasses set L{types} (see L{mrs.store.migrations}) and
    L{placeholder}, create L{_pool} in C{__init__} and implement
    L{_beginRead}, L{_beginWrite}, L{_beginMigration} and L{_tableExists}.

    @ivar path: the database file or URL, for messages.
    """

    log = Logger()

    path: str
    types: dict[str, str]
    placeholder = "?"
    #: The driver's exception classes, reported as L{StoreError}.
    databaseErrors: tuple[type[Exception], ...] = ()
    _pool: adbapi.ConnectionPool
    _closed = False
    #: True from open() until the migrations finish; calls made meanwhile
    #: wait in _waiting, so none runs against a schema still being built.
    _opening = False
    _openFailure: Failure | None = None

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self._clock = clock
        self._migrations = tuple(migrations)

    # Hooks for the dialects

    def _beginRead(self, txn: Cursor) -> None:
        raise NotImplementedError()

    def _beginWrite(self, txn: Cursor) -> None:
        raise NotImplementedError()

    def _beginMigration(self, txn: Cursor) -> None:
        raise NotImplementedError()

    def _tableExists(self, txn: Cursor, table: str) -> bool:
        raise NotImplementedError()

    # Plumbing

    def _execute(self, txn: Cursor, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        txn.execute(sql, tuple(parameters))
        return txn

    def _one(self, txn: Cursor, sql: str, parameters: Sequence[Any] = ()) -> Any:
        return self._execute(txn, sql, parameters).fetchone()

    def _all(self, txn: Cursor, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        return list(self._execute(txn, sql, parameters).fetchall())

    def _run(self, interaction: Callable[[Cursor], _T]) -> Deferred[_T]:
        """
        Run C{interaction(txn)} in the pool's thread as one transaction,
        reporting driver errors as L{StoreError}.  While L{open} runs, wait
        for it first.
        """
        if self._opening:
            waiter: Deferred[None] = Deferred()
            self._waiting.append(waiter)
            return waiter.addCallback(lambda _: self._run(interaction))
        if self._openFailure is not None:
            return fail(
                StoreError(
                    f"{self.path}: the store is not open because opening it failed: "
                    f"{self._openFailure.getErrorMessage()}"
                )
            )
        if self._closed:
            return fail(StoreError(f"{self.path}: the store is closed"))
        return self._runNow(interaction)

    def _runNow(self, interaction: Callable[[Cursor], _T]) -> Deferred[_T]:
        def guarded(txn: Cursor) -> _T:
            try:
                return interaction(txn)
            except self.databaseErrors as e:
                raise StoreError(f"{self.path}: database error: {e}") from e

        return self._pool.runInteraction(guarded)

    def _read(self, function: Callable[..., _T], *args: Any) -> Deferred[_T]:
        """
        Run C{function(txn, *args)} in a read transaction.
        """

        def interaction(txn: Cursor) -> _T:
            self._beginRead(txn)
            return function(txn, *args)

        return self._run(interaction)

    def _write(self, function: Callable[..., _T], *args: Any) -> Deferred[_T]:
        """
        Run C{function(txn, now, *args)} in a write transaction, with the
        time taken from the clock on the calling (reactor) thread.
        """
        now = self._clock()

        def interaction(txn: Cursor) -> _T:
            self._beginWrite(txn)
            return function(txn, now, *args)

        return self._run(interaction)

    def _record(
        self, txn: Cursor, now: float, actor: str, action: str, object: str, detail: str
    ) -> None:
        """
        Bump the generation and write the audit entry of a change.
        """
        self._execute(txn, "UPDATE meta SET value = value + 1 WHERE key = 'generation'")
        self._insertAudit(txn, now, actor, action, object, detail)

    def _insertAudit(
        self, txn: Cursor, now: float, actor: str, action: str, object: str, detail: str
    ) -> AuditEntry:
        row = self._one(
            txn,
            "INSERT INTO audit_log (time, actor, action, object, detail)"  # noqa: S608
            f" VALUES (?, ?, ?, ?, ?) RETURNING {_AUDIT_COLUMNS}",
            (now, actor, action, object, detail),
        )
        return _auditEntry(row)

    # Opening, migrations and closing

    def open(self) -> Deferred[None]:
        """
        Apply the migrations the database lacks.

        @raise SchemaTooNew: (as a failure) when the database was written by
            a newer version; nothing is written to it then.
        """
        self._opening = True
        self._waiting: list[Deferred[None]] = []
        d = self._openDatabase()
        d.addErrback(self._closeAfterFailure)
        d.addBoth(self._openFinished)
        return d

    def _openDatabase(self) -> Deferred[None]:
        """
        Prepare and migrate the database; subclasses may add steps first.
        """
        return self._runNow(self._migrate)

    def _closeAfterFailure(self, failure: Failure) -> Failure:
        self._openFailure = failure
        self._closePool()
        return failure

    def _openFinished(self, result: object) -> object:
        self._opening = False
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)
        return result

    def _currentVersion(self, txn: Cursor) -> int:
        if not self._tableExists(txn, "schema_version"):
            return 0
        row = self._one(txn, "SELECT MAX(version) FROM schema_version")
        return row[0] or 0

    def _migrate(self, txn: Cursor) -> None:
        supported = self._migrations[-1].version if self._migrations else 0
        self._beginRead(txn)
        current = self._currentVersion(txn)
        # End the read transaction: SQLite's WAL switch must run outside one.
        txn.connection.commit()
        if current > supported:
            raise SchemaTooNew(self.path, current, supported)
        self._prepareForWrites(txn)
        pending = [m for m in self._migrations if m.version > current]
        if not pending:
            return
        self._beginMigration(txn)
        # Another process may have migrated since the version was read.
        current = self._currentVersion(txn)
        if current > supported:
            raise SchemaTooNew(self.path, current, supported)
        self._execute(txn, render(SCHEMA_VERSION_TABLE, self.types))
        now = self._clock()
        for migration in pending:
            if migration.version <= current:
                continue
            for statement in migration.statements:
                self._execute(txn, render(statement, self.types))
            self._execute(
                txn,
                "INSERT INTO schema_version (version, description, applied) VALUES (?, ?, ?)",
                (migration.version, migration.description, now),
            )
            self.log.info(
                "Applied schema migration {version} to {path}: {description}",
                version=migration.version,
                path=self.path,
                description=migration.description,
            )

    def _prepareForWrites(self, txn: Cursor) -> None:
        """
        Adjust the database file once the schema version is known to be
        supported, outside any transaction.
        """

    def close(self) -> Deferred[None]:
        """
        Close the connection pool; waits for running queries to finish.
        """
        self._closePool()
        return succeed(None)

    def _closePool(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()

    def schemaVersion(self) -> Deferred[int]:
        """
        Return the schema version recorded in the database (0 before open).
        """
        return self._read(self._currentVersion)

    # Reads across tables

    def generation(self) -> Deferred[int]:
        return self._read(self._generation)

    def _generation(self, txn: Cursor) -> int:
        return int(self._one(txn, "SELECT value FROM meta WHERE key = 'generation'")[0])

    def snapshot(self) -> Deferred[Snapshot]:
        return self._read(self._snapshot)

    def _snapshot(self, txn: Cursor) -> Snapshot:
        return Snapshot(
            generation=self._generation(txn),
            users=tuple(self._listUsers(txn)),
            devices=tuple(self._listDevices(txn)),
            groups=tuple(self._listGroups(txn, "user") + self._listGroups(txn, "device")),
            rules=tuple(self._listRules(txn)),
        )

    # Users

    def _getUser(self, txn: Cursor, name: str) -> User | None:
        row = self._one(txn, f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,))  # noqa: S608
        return None if row is None else _user(row)

    def _existingUser(self, txn: Cursor, name: str) -> User:
        validateName("user", name)
        user = self._getUser(txn, name)
        if user is None:
            raise NotFound("user", name)
        return user

    def _listUsers(self, txn: Cursor) -> list[User]:
        rows = self._all(txn, f"SELECT {_USER_COLUMNS} FROM users ORDER BY name")  # noqa: S608
        return [_user(row) for row in rows]

    def addUser(
        self,
        name: str,
        role: str,
        passwordHash: str,
        actor: str,
        mustChangePassword: bool = False,
    ) -> Deferred[User]:
        return self._write(self._addUser, name, role, passwordHash, actor, bool(mustChangePassword))

    def _addUser(
        self, txn: Cursor, now: float, name: str, role: str, passwordHash: str, actor: str,
        mustChangePassword: bool,
    ) -> User:
        validateName("user", name)
        common.validateRole(role)
        common.validateHash("password hash", passwordHash)
        common.validateActor(actor)
        if self._getUser(txn, name) is not None:
            raise AlreadyExists("user", name)
        self._execute(
            txn,
            f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (name, role, passwordHash, True, mustChangePassword, now, now, 1),
        )
        self._record(
            txn, now, actor, "user.add", common.objectName("user", name),
            common.auditDetail(role=role, mustChangePassword=mustChangePassword),
        )
        return self._existingUser(txn, name)

    def getUser(self, name: str) -> Deferred[User | None]:
        return self._read(self._getUser, name)

    def listUsers(self) -> Deferred[list[User]]:
        return self._read(self._listUsers)

    def setUserPassword(
        self,
        name: str,
        passwordHash: str,
        actor: str,
        mustChangePassword: bool = False,
    ) -> Deferred[User]:
        return self._write(
            self._setUserPassword, name, passwordHash, actor, bool(mustChangePassword)
        )

    def _setUserPassword(
        self, txn: Cursor, now: float, name: str, passwordHash: str, actor: str,
        mustChangePassword: bool,
    ) -> User:
        common.validateHash("password hash", passwordHash)
        common.validateActor(actor)
        self._existingUser(txn, name)
        self._execute(
            txn,
            "UPDATE users SET password_hash = ?, must_change_password = ?, changed = ?,"
            " credentials_version = credentials_version + 1 WHERE name = ?",
            (passwordHash, mustChangePassword, now, name),
        )
        self._record(
            txn, now, actor, "user.password", common.objectName("user", name),
            common.auditDetail(mustChangePassword=mustChangePassword),
        )
        return self._existingUser(txn, name)

    def setUserEnabled(self, name: str, enabled: bool, actor: str) -> Deferred[User]:
        return self._write(self._setUserEnabled, name, bool(enabled), actor)

    def _setUserEnabled(
        self, txn: Cursor, now: float, name: str, enabled: bool, actor: str
    ) -> User:
        common.validateActor(actor)
        self._existingUser(txn, name)
        self._execute(
            txn,
            "UPDATE users SET enabled = ?, changed = ?,"
            " credentials_version = credentials_version + ? WHERE name = ?",
            (enabled, now, 0 if enabled else 1, name),
        )
        action = "user.enable" if enabled else "user.disable"
        self._record(
            txn, now, actor, action, common.objectName("user", name), common.auditDetail()
        )
        return self._existingUser(txn, name)

    def setUserRole(self, name: str, role: str, actor: str) -> Deferred[User]:
        return self._write(self._setUserRole, name, role, actor)

    def _setUserRole(self, txn: Cursor, now: float, name: str, role: str, actor: str) -> User:
        common.validateRole(role)
        common.validateActor(actor)
        previous = self._existingUser(txn, name).role
        self._execute(
            txn, "UPDATE users SET role = ?, changed = ? WHERE name = ?", (role, now, name)
        )
        self._record(
            txn, now, actor, "user.role", common.objectName("user", name),
            common.auditDetail(role=role, previous=previous),
        )
        return self._existingUser(txn, name)

    def removeUser(self, name: str, actor: str) -> Deferred[None]:
        return self._write(self._removeUser, name, actor)

    def _removeUser(self, txn: Cursor, now: float, name: str, actor: str) -> None:
        common.validateActor(actor)
        self._existingUser(txn, name)
        groups = [
            row[0]
            for row in self._all(
                txn,
                "SELECT g.name FROM member_groups g"
                " JOIN user_group_members m ON m.group_id = g.group_id"
                " WHERE m.user_name = ? ORDER BY g.name",
                (name,),
            )
        ]
        rules = [
            row[0]
            for row in self._all(
                txn, "SELECT rule_id FROM rules WHERE subject_user = ? ORDER BY rule_id", (name,)
            )
        ]
        tokens = self._one(txn, "SELECT COUNT(*) FROM api_tokens WHERE user_name = ?", (name,))[0]
        # Memberships, rules and tokens go by ON DELETE CASCADE.
        self._execute(txn, "DELETE FROM users WHERE name = ?", (name,))
        self._record(
            txn, now, actor, "user.remove", common.objectName("user", name),
            common.auditDetail(groups=groups, rules=rules, tokens=tokens),
        )

    # Devices

    def _getDevice(self, txn: Cursor, deviceId: str) -> Device | None:
        row = self._one(
            txn, f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE device_id = ?", (deviceId,)  # noqa: S608
        )
        return None if row is None else _device(row)

    def _existingDevice(self, txn: Cursor, deviceId: str) -> Device:
        validateName("device", deviceId)
        device = self._getDevice(txn, deviceId)
        if device is None:
            raise NotFound("device", deviceId)
        return device

    def _listDevices(self, txn: Cursor) -> list[Device]:
        rows = self._all(txn, f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY device_id")  # noqa: S608
        return [_device(r) for r in rows]

    def addDevice(
        self,
        deviceId: str,
        displayName: str,
        secretHash: str,
        actor: str,
        allowPlaintext: bool = False,
    ) -> Deferred[Device]:
        return self._write(
            self._addDevice, deviceId, displayName, secretHash, actor, bool(allowPlaintext)
        )

    def _addDevice(
        self, txn: Cursor, now: float, deviceId: str, displayName: str, secretHash: str,
        actor: str, allowPlaintext: bool,
    ) -> Device:
        validateName("device", deviceId)
        common.validateDisplayName(displayName)
        common.validateHash("secret hash", secretHash)
        common.validateActor(actor)
        if self._getDevice(txn, deviceId) is not None:
            raise AlreadyExists("device", deviceId)
        self._execute(
            txn,
            f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (deviceId, displayName, secretHash, True, allowPlaintext, now, now, 1),
        )
        self._record(
            txn, now, actor, "device.add", common.objectName("device", deviceId),
            common.auditDetail(displayName=displayName, allowPlaintext=allowPlaintext),
        )
        return self._existingDevice(txn, deviceId)

    def getDevice(self, deviceId: str) -> Deferred[Device | None]:
        return self._read(self._getDevice, deviceId)

    def listDevices(self) -> Deferred[list[Device]]:
        return self._read(self._listDevices)

    def updateDevice(
        self,
        deviceId: str,
        actor: str,
        displayName: str | None = None,
        allowPlaintext: bool | None = None,
    ) -> Deferred[Device]:
        if allowPlaintext is not None:
            allowPlaintext = bool(allowPlaintext)
        return self._write(self._updateDevice, deviceId, actor, displayName, allowPlaintext)

    def _updateDevice(
        self, txn: Cursor, now: float, deviceId: str, actor: str,
        displayName: str | None, allowPlaintext: bool | None,
    ) -> Device:
        common.validateActor(actor)
        if displayName is not None:
            common.validateDisplayName(displayName)
        device = self._existingDevice(txn, deviceId)
        changes: dict[str, Any] = {}
        if displayName is not None:
            changes["displayName"] = displayName
        if allowPlaintext is not None:
            changes["allowPlaintext"] = allowPlaintext
        if not changes:
            return device
        self._execute(
            txn,
            "UPDATE devices SET display_name = ?, allow_plaintext = ?, changed = ?"
            " WHERE device_id = ?",
            (
                changes.get("displayName", device.displayName),
                changes.get("allowPlaintext", device.allowPlaintext),
                now,
                deviceId,
            ),
        )
        self._record(
            txn, now, actor, "device.update", common.objectName("device", deviceId),
            common.auditDetail(**changes),
        )
        return self._existingDevice(txn, deviceId)

    def setDeviceSecret(self, deviceId: str, secretHash: str, actor: str) -> Deferred[Device]:
        return self._write(self._setDeviceSecret, deviceId, secretHash, actor)

    def _setDeviceSecret(
        self, txn: Cursor, now: float, deviceId: str, secretHash: str, actor: str
    ) -> Device:
        common.validateHash("secret hash", secretHash)
        common.validateActor(actor)
        self._existingDevice(txn, deviceId)
        self._execute(
            txn,
            "UPDATE devices SET secret_hash = ?, changed = ?,"
            " credentials_version = credentials_version + 1 WHERE device_id = ?",
            (secretHash, now, deviceId),
        )
        self._record(
            txn, now, actor, "device.secret", common.objectName("device", deviceId),
            common.auditDetail(),
        )
        return self._existingDevice(txn, deviceId)

    def setDeviceEnabled(self, deviceId: str, enabled: bool, actor: str) -> Deferred[Device]:
        return self._write(self._setDeviceEnabled, deviceId, bool(enabled), actor)

    def _setDeviceEnabled(
        self, txn: Cursor, now: float, deviceId: str, enabled: bool, actor: str
    ) -> Device:
        common.validateActor(actor)
        self._existingDevice(txn, deviceId)
        self._execute(
            txn,
            "UPDATE devices SET enabled = ?, changed = ?,"
            " credentials_version = credentials_version + ? WHERE device_id = ?",
            (enabled, now, 0 if enabled else 1, deviceId),
        )
        action = "device.enable" if enabled else "device.disable"
        self._record(
            txn, now, actor, action, common.objectName("device", deviceId), common.auditDetail()
        )
        return self._existingDevice(txn, deviceId)

    def removeDevice(self, deviceId: str, actor: str) -> Deferred[None]:
        return self._write(self._removeDevice, deviceId, actor)

    def _removeDevice(self, txn: Cursor, now: float, deviceId: str, actor: str) -> None:
        common.validateActor(actor)
        self._existingDevice(txn, deviceId)
        groups = [
            row[0]
            for row in self._all(
                txn,
                "SELECT g.name FROM member_groups g"
                " JOIN device_group_members m ON m.group_id = g.group_id"
                " WHERE m.device_id = ? ORDER BY g.name",
                (deviceId,),
            )
        ]
        rules = [
            row[0]
            for row in self._all(
                txn,
                "SELECT rule_id FROM rules WHERE target_device = ? ORDER BY rule_id",
                (deviceId,),
            )
        ]
        # Memberships and rules go by ON DELETE CASCADE.
        self._execute(txn, "DELETE FROM devices WHERE device_id = ?", (deviceId,))
        self._record(
            txn, now, actor, "device.remove", common.objectName("device", deviceId),
            common.auditDetail(groups=groups, rules=rules),
        )

    # Groups

    def _groupId(self, txn: Cursor, kind: str, name: str) -> int:
        common.validateGroupKind(kind)
        label = common.KIND_LABELS[common.groupObjectKind(kind)]
        validateName(label, name)
        row = self._one(
            txn, "SELECT group_id FROM member_groups WHERE kind = ? AND name = ?", (kind, name)
        )
        if row is None:
            raise NotFound(label, name)
        return int(row[0])

    def _members(self, txn: Cursor, kind: str, groupId: int) -> tuple[str, ...]:
        if kind == "user":
            sql = "SELECT user_name FROM user_group_members WHERE group_id = ? ORDER BY user_name"
        else:
            sql = (
                "SELECT device_id FROM device_group_members WHERE group_id = ?"
                " ORDER BY device_id"
            )
        return tuple(row[0] for row in self._all(txn, sql, (groupId,)))

    def _group(self, txn: Cursor, kind: str, name: str) -> Group:
        groupId = self._groupId(txn, kind, name)
        return Group(kind=kind, name=name, members=self._members(txn, kind, groupId))  # type: ignore[arg-type]

    def _listGroups(self, txn: Cursor, kind: str) -> list[Group]:
        common.validateGroupKind(kind)
        if kind == "user":
            memberSql = (
                "SELECT m.group_id, m.user_name FROM user_group_members m"
                " JOIN member_groups g ON g.group_id = m.group_id ORDER BY m.user_name"
            )
        else:
            memberSql = (
                "SELECT m.group_id, m.device_id FROM device_group_members m"
                " JOIN member_groups g ON g.group_id = m.group_id ORDER BY m.device_id"
            )
        members: dict[int, list[str]] = {}
        for groupId, member in self._all(txn, memberSql):
            members.setdefault(groupId, []).append(member)
        rows = self._all(
            txn, "SELECT group_id, name FROM member_groups WHERE kind = ? ORDER BY name", (kind,)
        )
        return [
            Group(kind=kind, name=name, members=tuple(members.get(groupId, ())))  # type: ignore[arg-type]
            for groupId, name in rows
        ]

    def addGroup(self, kind: str, name: str, actor: str) -> Deferred[Group]:
        return self._write(self._addGroup, kind, name, actor)

    def _addGroup(self, txn: Cursor, now: float, kind: str, name: str, actor: str) -> Group:
        common.validateGroupKind(kind)
        objectKind = common.groupObjectKind(kind)
        validateName(common.KIND_LABELS[objectKind], name)
        common.validateActor(actor)
        exists = self._one(
            txn, "SELECT group_id FROM member_groups WHERE kind = ? AND name = ?", (kind, name)
        )
        if exists is not None:
            raise AlreadyExists(common.KIND_LABELS[objectKind], name)
        self._execute(txn, "INSERT INTO member_groups (kind, name) VALUES (?, ?)", (kind, name))
        self._record(
            txn, now, actor, "group.add", common.objectName(objectKind, name), common.auditDetail()
        )
        return self._group(txn, kind, name)

    def removeGroup(self, kind: str, name: str, actor: str) -> Deferred[None]:
        return self._write(self._removeGroup, kind, name, actor)

    def _removeGroup(self, txn: Cursor, now: float, kind: str, name: str, actor: str) -> None:
        common.validateActor(actor)
        groupId = self._groupId(txn, kind, name)
        members = self._members(txn, kind, groupId)
        rules = [
            row[0]
            for row in self._all(
                txn,
                "SELECT rule_id FROM rules WHERE subject_group = ? OR target_group = ?"
                " ORDER BY rule_id",
                (groupId, groupId),
            )
        ]
        # Memberships and rules go by ON DELETE CASCADE.
        self._execute(txn, "DELETE FROM member_groups WHERE group_id = ?", (groupId,))
        self._record(
            txn, now, actor, "group.remove",
            common.objectName(common.groupObjectKind(kind), name),
            common.auditDetail(members=list(members), rules=rules),
        )

    def listGroups(self, kind: str) -> Deferred[list[Group]]:
        return self._read(self._listGroups, kind)

    def addGroupMember(self, kind: str, group: str, member: str, actor: str) -> Deferred[Group]:
        return self._write(self._changeGroupMember, kind, group, member, actor, True)

    def removeGroupMember(
        self, kind: str, group: str, member: str, actor: str
    ) -> Deferred[Group]:
        return self._write(self._changeGroupMember, kind, group, member, actor, False)

    def _changeGroupMember(
        self, txn: Cursor, now: float, kind: str, group: str, member: str, actor: str, add: bool
    ) -> Group:
        common.validateActor(actor)
        groupId = self._groupId(txn, kind, group)
        objectKind = common.groupObjectKind(kind)
        container = f"{common.KIND_LABELS[objectKind]} {group!r}"
        if add:
            if kind == "user":
                self._existingUser(txn, member)
            else:
                self._existingDevice(txn, member)
        else:
            validateName(kind, member)
        table, column = (
            ("user_group_members", "user_name") if kind == "user"
            else ("device_group_members", "device_id")
        )
        isMember = self._one(
            txn, f"SELECT 1 FROM {table} WHERE group_id = ? AND {column} = ?", (groupId, member)  # noqa: S608
        )
        if add:
            if isMember is not None:
                raise AlreadyExists(kind, member, container=container)
            self._execute(
                txn, f"INSERT INTO {table} (group_id, {column}) VALUES (?, ?)", (groupId, member)  # noqa: S608
            )
        else:
            if isMember is None:
                raise NotFound(kind, member, container=container)
            self._execute(
                txn, f"DELETE FROM {table} WHERE group_id = ? AND {column} = ?", (groupId, member)  # noqa: S608
            )
        self._record(
            txn, now, actor, "group.member_add" if add else "group.member_remove",
            common.objectName(objectKind, group),
            common.auditDetail(member=common.objectName(kind, member)),
        )
        return self._group(txn, kind, group)

    # Rules

    def _listRules(self, txn: Cursor) -> list[Rule]:
        return [_rule(row) for row in self._all(txn, _RULE_QUERY + " ORDER BY r.rule_id")]

    def _existingRule(self, txn: Cursor, ruleId: int) -> Rule:
        common.validateRuleId(ruleId)
        row = self._one(txn, _RULE_QUERY + " WHERE r.rule_id = ?", (ruleId,))
        if row is None:
            raise NotFound("rule", str(ruleId))
        return _rule(row)

    def addRule(
        self,
        subjectKind: str,
        subject: str,
        targetKind: str,
        target: str,
        rights: object,
        actor: str,
        schedule: Schedule | None = None,
    ) -> Deferred[Rule]:
        return self._write(
            self._addRule, subjectKind, subject, targetKind, target, rights, actor, schedule
        )

    def _ruleEnd(self, txn: Cursor, kind: str, name: str) -> tuple[str | None, int | None]:
        """
        Return the (name, group id) column values for a rule's subject or
        target, checking that it exists.
        """
        if kind == "user":
            return self._existingUser(txn, name).name, None
        if kind == "device":
            return self._existingDevice(txn, name).deviceId, None
        return None, self._groupId(txn, kind.removesuffix("_group"), name)

    def _addRule(
        self, txn: Cursor, now: float, subjectKind: str, subject: str, targetKind: str,
        target: str, rights: object, actor: str, schedule: Schedule | None,
    ) -> Rule:
        common.validateSubject(subjectKind, subject)
        common.validateTarget(targetKind, target)
        rightSet = validateRights(rights)
        common.validateSchedule(schedule)
        common.validateActor(actor)
        subjectUser, subjectGroup = self._ruleEnd(txn, subjectKind, subject)
        targetDevice, targetGroup = self._ruleEnd(txn, targetKind, target)
        for existing in self._listRules(txn):
            if (
                (existing.subjectKind, existing.subject) == (subjectKind, subject)
                and (existing.targetKind, existing.target) == (targetKind, target)
                and existing.schedule == schedule
            ):
                raise AlreadyExists("rule", str(existing.ruleId), common.DUPLICATE_RULE_FIX)
        row = self._one(
            txn,
            "INSERT INTO rules (subject_user, subject_group, target_device, target_group,"
            " rights, days, start_minute, end_minute, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING rule_id",
            (
                subjectUser, subjectGroup, targetDevice, targetGroup,
                common.encodeRights(rightSet),
                None if schedule is None else common.encodeDays(schedule.days),
                None if schedule is None else schedule.start,
                None if schedule is None else schedule.end,
                now,
            ),
        )
        ruleId = int(row[0])
        self._record(
            txn, now, actor, "rule.add", common.objectName("rule", ruleId),
            common.ruleDetail(subjectKind, subject, targetKind, target, rightSet, schedule),
        )
        return self._existingRule(txn, ruleId)

    def setRuleRights(self, ruleId: int, rights: object, actor: str) -> Deferred[Rule]:
        return self._write(self._setRuleRights, ruleId, rights, actor)

    def _setRuleRights(
        self, txn: Cursor, now: float, ruleId: int, rights: object, actor: str
    ) -> Rule:
        rightSet = validateRights(rights)
        common.validateActor(actor)
        previous = self._existingRule(txn, ruleId).rights
        self._execute(
            txn, "UPDATE rules SET rights = ? WHERE rule_id = ?",
            (common.encodeRights(rightSet), ruleId),
        )
        self._record(
            txn, now, actor, "rule.update", common.objectName("rule", ruleId),
            common.auditDetail(rights=sorted(rightSet), previous=sorted(previous)),
        )
        return self._existingRule(txn, ruleId)

    def removeRule(self, ruleId: int, actor: str) -> Deferred[None]:
        return self._write(self._removeRule, ruleId, actor)

    def _removeRule(self, txn: Cursor, now: float, ruleId: int, actor: str) -> None:
        common.validateActor(actor)
        rule = self._existingRule(txn, ruleId)
        self._execute(txn, "DELETE FROM rules WHERE rule_id = ?", (ruleId,))
        self._record(
            txn, now, actor, "rule.remove", common.objectName("rule", ruleId),
            common.ruleDetail(
                rule.subjectKind, rule.subject, rule.targetKind, rule.target,
                rule.rights, rule.schedule,
            ),
        )

    def listRules(self) -> Deferred[list[Rule]]:
        return self._read(self._listRules)

    # Settings

    def getSetting(self, key: str) -> Deferred[str | None]:
        return self._read(self._getSetting, key)

    def _getSetting(self, txn: Cursor, key: str) -> str | None:
        row = self._one(txn, "SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else row[0]

    def setSetting(self, key: str, value: str, actor: str) -> Deferred[None]:
        return self._write(self._setSetting, key, value, actor)

    def _setSetting(self, txn: Cursor, now: float, key: str, value: str, actor: str) -> None:
        common.validateSettingKey(key)
        if not isinstance(value, str):
            raise InvalidValue("setting value", repr(value), "give text")
        common.validateActor(actor)
        if self._getSetting(txn, key) is None:
            self._execute(txn, "INSERT INTO settings (key, value) VALUES (?, ?)", (key, value))
        else:
            self._execute(txn, "UPDATE settings SET value = ? WHERE key = ?", (value, key))
        # The value is not audited: settings may hold secrets.
        self._record(
            txn, now, actor, "setting.set", common.objectName("setting", key), common.auditDetail()
        )

    # API tokens

    def addApiToken(
        self, user: str, label: str, tokenHash: str, actor: str
    ) -> Deferred[ApiToken]:
        return self._write(self._addApiToken, user, label, tokenHash, actor)

    def _addApiToken(
        self, txn: Cursor, now: float, user: str, label: str, tokenHash: str, actor: str
    ) -> ApiToken:
        common.validateLabel(label)
        common.validateHash("token hash", tokenHash)
        common.validateActor(actor)
        self._existingUser(txn, user)
        if self._one(txn, "SELECT 1 FROM api_tokens WHERE token_hash = ?", (tokenHash,)):
            raise AlreadyExists("API token", label, common.DUPLICATE_TOKEN_FIX)
        row = self._one(
            txn,
            "INSERT INTO api_tokens (user_name, label, token_hash, created, last_used)"  # noqa: S608
            f" VALUES (?, ?, ?, ?, NULL) RETURNING {_TOKEN_COLUMNS}",
            (user, label, tokenHash, now),
        )
        token = _token(row)
        self._record(
            txn, now, actor, "token.add", common.objectName("token", token.tokenId),
            common.auditDetail(user=user, label=label),
        )
        return token

    def listApiTokens(self, user: str) -> Deferred[list[ApiToken]]:
        return self._read(self._listApiTokens, user)

    def _listApiTokens(self, txn: Cursor, user: str) -> list[ApiToken]:
        self._existingUser(txn, user)
        rows = self._all(
            txn,
            f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE user_name = ? ORDER BY token_id",  # noqa: S608
            (user,),
        )
        return [_token(row) for row in rows]

    def findApiToken(self, tokenHash: str) -> Deferred[ApiToken | None]:
        # Noting the use is not a change: no audit entry, no generation bump.
        return self._write(self._findApiToken, tokenHash)

    def _findApiToken(self, txn: Cursor, now: float, tokenHash: str) -> ApiToken | None:
        row = self._one(
            txn,
            f"UPDATE api_tokens SET last_used = ? WHERE token_hash = ? RETURNING {_TOKEN_COLUMNS}",  # noqa: S608
            (now, tokenHash),
        )
        return None if row is None else _token(row)

    def removeApiToken(self, tokenId: int, actor: str) -> Deferred[None]:
        return self._write(self._removeApiToken, tokenId, actor)

    def _removeApiToken(self, txn: Cursor, now: float, tokenId: int, actor: str) -> None:
        common.validateTokenId(tokenId)
        common.validateActor(actor)
        row = self._one(
            txn, f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE token_id = ?", (tokenId,)  # noqa: S608
        )
        if row is None:
            raise NotFound("API token", str(tokenId))
        token = _token(row)
        self._execute(txn, "DELETE FROM api_tokens WHERE token_id = ?", (tokenId,))
        self._record(
            txn, now, actor, "token.remove", common.objectName("token", tokenId),
            common.auditDetail(user=token.user, label=token.label),
        )

    # Audit log

    def audit(
        self, actor: str, action: str, object: str, detail: str = ""
    ) -> Deferred[AuditEntry]:
        return self._write(self._audit, actor, action, object, detail)

    def _audit(
        self, txn: Cursor, now: float, actor: str, action: str, object: str, detail: str
    ) -> AuditEntry:
        common.validateAuditEntry(actor, action, object, detail)
        return self._insertAudit(txn, now, actor, action, object, detail)

    def listAudit(
        self,
        actor: str | None = None,
        action: str | None = None,
        object: str | None = None,
        since: float | None = None,
        limit: int = 200,
    ) -> Deferred[list[AuditEntry]]:
        return self._read(self._listAudit, actor, action, object, since, limit)

    def _listAudit(
        self, txn: Cursor, actor: str | None, action: str | None, object: str | None,
        since: float | None, limit: int,
    ) -> list[AuditEntry]:
        common.validateLimit(limit)
        conditions = []
        parameters: list[Any] = []
        if actor is not None:
            conditions.append("actor = ?")
            parameters.append(actor)
        if action is not None:
            conditions.append("substr(action, 1, ?) = ?")
            parameters += [len(action), action]
        if object is not None:
            conditions.append(self._containsCondition("object"))
            parameters.append(object)
        if since is not None:
            conditions.append("time >= ?")
            parameters.append(since)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._all(
            txn,
            f"SELECT {_AUDIT_COLUMNS} FROM audit_log{where} ORDER BY entry_id DESC LIMIT ?",  # noqa: S608
            parameters + [limit],
        )
        return [_auditEntry(row) for row in rows]

    def _containsCondition(self, column: str) -> str:
        """
        Return a condition that is true when C{column} contains the text
        bound to the next placeholder.
        """
        return f"instr({column}, ?) > 0"
