"""
The store for several server nodes: one PostgreSQL database, through
psycopg2 in an adbapi connection pool.

Writers first lock the generation counter's row, so changes from all nodes
and command lines apply one at a time.  Readers use repeatable read, so a
snapshot is consistent.  Needs PostgreSQL 10 or later (identity
columns) and the C{postgresql} extra (psycopg2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.enterprise import adbapi
from zope.interface import implementer

from mrs.store.interface import IStore
from mrs.store.migrations import MIGRATIONS, POSTGRES_TYPES, Migration
from mrs.store.sql import Cursor, SQLStore

#: Key of the transaction-scoped advisory lock held while migrating, so two
#: nodes starting at once do not both apply a migration.
MIGRATION_LOCK = 0x4D5253  # "MRS"


def _redact(url: str) -> str:
    """
    Remove the password from a database URL, for messages and logs.
    """
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not separator or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


@implementer(IStore)
class PostgresStore(SQLStore):
    """
    L{IStore} on a PostgreSQL database given by a URL such as
    C{postgresql://mrs:password@db.example/mrs}.
    """

    types = POSTGRES_TYPES
    placeholder = "%s"

    def __init__(
        self,
        url: str,
        reactor: Any = None,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
        connectOptions: Mapping[str, Any] | None = None,
        poolSize: int = 4,
    ) -> None:
        """
        @param url: the libpq connection URL.
        @param reactor: the reactor that runs the pool's threads; the global
            reactor when L{None}.
        @param clock: returns the time of each change in epoch seconds.
        @param migrations: the schema steps to apply; tests pass their own.
        @param connectOptions: extra keyword arguments for
            C{psycopg2.connect}, such as C{options="-c search_path=x"}.
        @param poolSize: the most connections the pool opens.
        """
        import psycopg2

        super().__init__(clock=clock, migrations=migrations)
        self.path = _redact(url)
        self.databaseErrors = (psycopg2.Error,)
        kwargs: dict[str, Any] = dict(connectOptions or {})
        if reactor is not None:
            kwargs["cp_reactor"] = reactor
        self._pool = adbapi.ConnectionPool(
            "psycopg2",
            url,
            cp_min=1,
            cp_max=poolSize,
            cp_noisy=False,
            cp_reconnect=True,
            **kwargs,
        )

    def _beginRead(self, txn: Cursor) -> None:
        # psycopg2 sends BEGIN before the first statement; this one must
        # come right after it.
        self._execute(txn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def _beginWrite(self, txn: Cursor) -> None:
        self._execute(txn, "SELECT value FROM meta WHERE key = 'generation' FOR UPDATE")

    def _beginMigration(self, txn: Cursor) -> None:
        self._execute(txn, "SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def _tableExists(self, txn: Cursor, table: str) -> bool:
        row = self._one(txn, "SELECT to_regclass(?) IS NOT NULL", (table,))
        return bool(row[0])

    def _containsCondition(self, column: str) -> str:
        return f"strpos({column}, ?) > 0"
