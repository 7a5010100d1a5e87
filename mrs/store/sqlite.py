"""
The default store: one SQLite file in the data directory.

One connection in one worker thread does all the work, so queries never
block the reactor and writes from the server never contend with each other.  The file is
in WAL journal mode with a busy timeout, so the C{mrs} command line can
change accounts while the server runs.  The server notices such changes by
polling L{SQLiteStore.generation}.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorCore, IReactorThreads
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from mrs.store.errors import StoreError
from mrs.store.interface import IStore
from mrs.store.migrations import MIGRATIONS, SQLITE_TYPES, Migration
from mrs.store.sql import Cursor, SQLStore

#: Seconds a statement waits for another process's lock before failing.
BUSY_TIMEOUT = 5.0


@implementer(IStore)
class SQLiteStore(SQLStore):
    """
    L{IStore} on an SQLite file, created with mode 0600 if missing.

    The directory that contains the file must exist.  Needs SQLite 3.35 or
    later, for C{RETURNING}.
    """

    types = SQLITE_TYPES
    databaseErrors = (sqlite3.Error,)

    def __init__(
        self,
        path: str | os.PathLike[str],
        reactor: Any = None,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        """
        @param path: the database file.
        @param reactor: an L{IReactorThreads} and L{IReactorCore} provider
            that runs the pool's thread; the global reactor when L{None}.
        @param clock: returns the time, in seconds since the epoch, stored
            as the time of each change.
        @param migrations: the schema steps to apply; tests pass their own.
        """
        super().__init__(clock=clock, migrations=migrations)
        self.path = os.fspath(path)
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self._reactor: IReactorCore = reactor
        self._pool = adbapi.ConnectionPool(
            "sqlite3",
            self.path,
            check_same_thread=False,
            # Transactions are begun explicitly, see _beginRead/_beginWrite.
            isolation_level=None,
            timeout=BUSY_TIMEOUT,
            cp_min=1,
            cp_max=1,
            cp_noisy=False,
            cp_openfun=self._configureConnection,
            cp_reactor=reactor,
        )

    def _configureConnection(self, connection: sqlite3.Connection) -> None:
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")

    def open(self) -> Deferred[None]:
        """
        Create the file with mode 0600 if missing, switch it to WAL mode and
        apply the migrations it lacks.  Calls made before this finishes wait
        for it.

        @raise mrs.store.errors.SchemaTooNew: (as a failure) when a newer
            version wrote the file; the file is then left byte for byte as
            it was.
        @raise StoreError: when the directory is missing or the file cannot
            be opened.
        """
        return super().open()

    def _openDatabase(self) -> Deferred[None]:
        threads: IReactorThreads = self._reactor  # type: ignore[assignment]
        d = deferToThreadPool(threads, self._pool.threadpool, self._createFile)
        d.addCallback(lambda _: super(SQLiteStore, self)._openDatabase())
        return d

    def _createFile(self) -> None:
        path = Path(self.path)
        if not path.parent.is_dir():
            raise StoreError(
                f"{self.path}: directory {str(path.parent)!r} not found; "
                f"create it with mode 0700 or set data_dir"
            )
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        except OSError as e:
            raise StoreError(f"{self.path}: cannot create the database file: {e.strerror}")
        try:
            os.fchmod(descriptor, 0o600)
        finally:
            os.close(descriptor)

    def _prepareForWrites(self, txn: Cursor) -> None:
        mode = self._one(txn, "PRAGMA journal_mode = WAL")[0]
        if mode != "wal":
            self.log.warn(
                "SQLite did not switch {path} to WAL journal mode (the mode is {mode}), "
                "so readers and the command line may wait for the server's writes",
                path=self.path,
                mode=mode,
            )

    def _beginRead(self, txn: Cursor) -> None:
        self._execute(txn, "BEGIN")

    def _beginWrite(self, txn: Cursor) -> None:
        # IMMEDIATE takes the write lock at once, so two processes cannot
        # deadlock while each upgrades a read lock to a write lock.
        self._execute(txn, "BEGIN IMMEDIATE")

    def _beginMigration(self, txn: Cursor) -> None:
        self._execute(txn, "BEGIN IMMEDIATE")

    def _tableExists(self, txn: Cursor, table: str) -> bool:
        row = self._one(
            txn, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        )
        return row is not None
