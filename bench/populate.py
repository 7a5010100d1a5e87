"""
Fill a data directory's store before the server starts: C{python -m
bench.populate DATADIR SPEC}, SPEC a JSON object with C{devices} (count),
C{prefix}, C{secret}, C{rules} (grant the viewer video on each device),
C{apiToken} (the admin's API token in clear).

It creates the admin C{benchadmin} (password C{bench-admin-pw}) and the
operator C{viewer} (password C{viewer-pw}).  Passwords and secrets are
hashed with cheap argon2 parameters, so that thousands of logins measure
the relay and not the password hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from mrs.store.sqlite import SQLiteStore

ADMIN = ("benchadmin", "bench-admin-pw")
VIEWER = ("viewer", "viewer-pw")
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def populate(reactor: Any, dataDir: Path, spec: dict[str, Any]) -> None:
    dataDir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(dataDir, 0o700)
    store = SQLiteStore(dataDir / "mrs.sqlite3", reactor=reactor)
    await store.open()
    try:
        await store.addUser(ADMIN[0], "admin", _CHEAP.hash(ADMIN[1]), actor="bench")
        await store.addUser(VIEWER[0], "operator", _CHEAP.hash(VIEWER[1]), actor="bench")
        secretHash = _CHEAP.hash(spec.get("secret", "bench-secret"))
        for n in range(spec.get("devices", 0)):
            deviceId = f"{spec.get('prefix', 'cam-')}{n}"
            await store.addDevice(deviceId, f"Bench camera {n}", secretHash, actor="bench")
            if spec.get("rules", True):
                await store.addRule("user", VIEWER[0], "device", deviceId, ["video"],
                                    actor="bench")
        token = spec.get("apiToken")
        if token:
            await store.addApiToken(ADMIN[0], "bench",
                                    hashlib.sha256(token.encode()).hexdigest(), actor="bench")
    finally:
        await store.close()


def main(reactor: Any, dataDir: str, spec: str) -> Any:
    return ensureDeferred(populate(reactor, Path(dataDir), json.loads(spec)))


if __name__ == "__main__":
    react(main, sys.argv[1:])
