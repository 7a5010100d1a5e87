"""
The permission service: the one place that decides who may do what.

Decisions are lookups on an immutable L{PermissionSnapshot} built from the
store.  The service polls the store's generation counter once a second, so
changes made by the CLI in another process, the admin site or the API
reach live sessions within a second.  Its listeners (the hub) then
re-check every live session against the new snapshot.  Rules with a schedule are
re-checked at every minute boundary too, so a closing time window ends its
subscriptions at once.

Default deny.  Admins may view (video, audio, location) every device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from twisted.application.service import Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from mrs.config import SETTINGS_BY_KEY
from mrs.ready import Readiness
from mrs.store.models import Device, Rule, Snapshot, User

#: Rights every admin has on every device.
ADMIN_RIGHTS = frozenset({"video", "audio", "location"})

#: Settings that take effect without a restart when stored as config.<key>.
LIVE_SETTINGS = ("time_zone", "congestion_timeout")



@dataclass(frozen=True)
class Grant:
    rights: frozenset[str]
    rule: Rule


@dataclass
class PermissionSnapshot:
    """
    An immutable view of users, devices and the rights between them.
    """

    generation: int
    users: dict[str, User] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    #: user name -> device id -> grants, expanded through groups.
    grants: dict[str, dict[str, tuple[Grant, ...]]] = field(default_factory=dict)
    hasSchedules: bool = False

    @classmethod
    def fromStore(cls, snapshot: Snapshot) -> PermissionSnapshot:
        users = {u.name: u for u in snapshot.users}
        devices = {d.deviceId: d for d in snapshot.devices}
        userGroups = {g.name: g.members for g in snapshot.groups if g.kind == "user"}
        deviceGroups = {g.name: g.members for g in snapshot.groups if g.kind == "device"}
        grants: dict[str, dict[str, list[Grant]]] = {}
        hasSchedules = False
        for rule in snapshot.rules:
            if rule.schedule is not None:
                hasSchedules = True
            subjects: Iterable[str]
            if rule.subjectKind == "user":
                subjects = (rule.subject,)
            else:
                subjects = userGroups.get(rule.subject, ())
            targets: Iterable[str]
            if rule.targetKind == "device":
                targets = (rule.target,)
            else:
                targets = deviceGroups.get(rule.target, ())
            grant = Grant(rule.rights, rule)
            for user in subjects:
                perUser = grants.setdefault(user, {})
                for device in targets:
                    perUser.setdefault(device, []).append(grant)
        frozen = {
            user: {device: tuple(gs) for device, gs in perUser.items()}
            for user, perUser in grants.items()
        }
        return cls(snapshot.generation, users, devices, frozen, hasSchedules)

    def rights(self, user: str, device: str, weekday: int, minute: int) -> frozenset[str]:
        """
        Return the rights C{user} holds on C{device} at the given local
        weekday (0 is Monday) and minute of the day.
        """
        account = self.users.get(user)
        target = self.devices.get(device)
        if account is None or not account.enabled or target is None:
            return frozenset()
        result: set[str] = set()
        if account.role == "admin":
            result |= ADMIN_RIGHTS
        for grant in self.grants.get(user, {}).get(device, ()):
            schedule = grant.rule.schedule
            if schedule is None or schedule.covers(weekday, minute):
                result |= grant.rights
        return frozenset(result)

    def explain(self, user: str, device: str) -> list[tuple[str, Rule | None]]:
        """
        List which rule grants each right of C{user} on C{device}, ignoring
        schedules; L{None} stands for the admin role.
        """
        account = self.users.get(user)
        if account is None or device not in self.devices:
            return []
        result: list[tuple[str, Rule | None]] = []
        if account.role == "admin":
            result += [(right, None) for right in sorted(ADMIN_RIGHTS)]
        for grant in self.grants.get(user, {}).get(device, ()):
            result += [(right, grant.rule) for right in sorted(grant.rights)]
        return result

    def visibleDevices(self, user: str, weekday: int, minute: int) -> list[str]:
        """
        Return the ids of the devices on which C{user} has any right now.
        """
        account = self.users.get(user)
        if account is None or not account.enabled:
            return []
        if account.role == "admin":
            candidates: Iterable[str] = self.devices
        else:
            candidates = self.grants.get(user, {})
        return sorted(
            d for d in candidates if self.rights(user, d, weekday, minute)
        )


class PermissionService(Service):
    """
    Keeps the current L{PermissionSnapshot} and decides permission checks.

    @ivar snapshot: the snapshot decisions are made on.
    """

    log = Logger()
    pollInterval = 1.0

    def __init__(self, store: object, reactor: IReactorTime, timeZone: str = "UTC",
                 metrics: object | None = None,
                 after: Callable[[], Deferred[None]] | None = None) -> None:
        """
        @param after: returns a Deferred that fires when the store is open;
            polling starts after it.
        """
        self.store = store
        self.after = after
        self.reactor = reactor
        self.zone = ZoneInfo(timeZone)
        self.metrics = metrics
        self.snapshot = PermissionSnapshot(generation=-1)
        self._listeners: list[Callable[[PermissionSnapshot], None]] = []
        self._ready = Readiness()
        self._loop: LoopingCall | None = None
        self._lastMinute: tuple[int, int] | None = None
        #: Settings changed at run time through the store, by key.
        self.liveSettings: dict[str, object] = {}
        self._refreshing = False

    def whenReady(self) -> Deferred[None]:
        """
        Return a Deferred that fires once the first snapshot is loaded.
        """
        return self._ready.whenReady()

    def addListener(self, listener: Callable[[PermissionSnapshot], None]) -> None:
        """
        Call C{listener} with every new snapshot and at every minute
        boundary while scheduled rules exist.
        """
        self._listeners.append(listener)

    def startService(self) -> None:
        super().startService()
        if self.after is None:
            self._startPolling()
            return
        self.after().addCallbacks(
            lambda _: self._startPolling(),
            # The store logs why it did not open; one line here is enough.
            lambda f: self.log.error("permissions not loaded: the store did not open"),
        )

    def _startPolling(self) -> None:
        if not self.running:
            return
        self.log.info("permission service started: checking the store for changes every "
                      "{interval:g} s; schedules in time zone {zone}",
                      interval=self.pollInterval, zone=str(self.zone))
        self._loop = LoopingCall(self._poll)
        self._loop.clock = self.reactor
        self._loop.start(self.pollInterval, now=True).addErrback(
            lambda f: self.log.failure("permission polling stopped", f)
        )

    def stopService(self) -> None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.log.info("permission service stopped")

    def localTime(self) -> tuple[int, int]:
        """
        Return the current local weekday and minute of the day.
        """
        now = datetime.fromtimestamp(self.reactor.seconds(), UTC).astimezone(self.zone)
        return now.weekday(), now.hour * 60 + now.minute

    @inlineCallbacks
    def _poll(self):  # type: ignore[no-untyped-def]
        if self._refreshing:
            return
        self._refreshing = True
        try:
            generation = yield self.store.generation()  # type: ignore[attr-defined]
            if generation != self.snapshot.generation:
                yield self.refreshNow()
            elif self.snapshot.hasSchedules and self.localTime() != self._lastMinute:
                self._notify()
        except Exception:
            self.log.failure("reading permissions from the store failed; keeping the last rules")
        finally:
            self._refreshing = False

    @inlineCallbacks
    def refreshNow(self):  # type: ignore[no-untyped-def]
        """
        Reload the snapshot from the store now and notify the listeners.
        """
        stored = yield self.store.snapshot()  # type: ignore[attr-defined]
        self.snapshot = PermissionSnapshot.fromStore(stored)
        yield self._readLiveSettings()
        self.log.debug("permissions reloaded, generation {generation}",
                       generation=self.snapshot.generation)
        if not self._ready.fired:
            self._ready.fire()
        self._notify()

    @inlineCallbacks
    def _readLiveSettings(self):  # type: ignore[no-untyped-def]
        """
        Read the settings the admin site may change while the server runs
        (stored as C{config.<key>}); a stored value overrides the file.
        """
        for key in LIVE_SETTINGS:
            value = yield self.store.getSetting(f"config.{key}")  # type: ignore[attr-defined]
            if value is None:
                continue
            try:
                parsed = SETTINGS_BY_KEY[key].parse(value)
            except ValueError as e:
                self.log.warn("ignoring stored setting {key} = {value!r}: {error}",
                              key=key, value=value, error=str(e))
                continue
            if self.liveSettings.get(key) != parsed:
                self.liveSettings[key] = parsed
                self.log.info("setting {key} is now {value!r}", key=key, value=value)
        if "time_zone" in self.liveSettings:
            self.zone = ZoneInfo(str(self.liveSettings["time_zone"]))

    def _notify(self) -> None:
        self._lastMinute = self.localTime()
        for listener in list(self._listeners):
            try:
                listener(self.snapshot)
            except Exception:
                self.log.failure("applying new permissions failed in {listener!r}",
                                 listener=listener)

    def rights(self, user: str, device: str) -> frozenset[str]:
        """
        Return the rights C{user} holds on C{device} now.  A failure while
        deciding denies everything and is logged.
        """
        try:
            weekday, minute = self.localTime()
            return self.snapshot.rights(user, device, weekday, minute)
        except Exception:
            self.log.failure("permission check failed for {user} on {device}; denying",
                             user=user, device=device)
            return frozenset()

    def allowed(self, user: str, device: str, right: str) -> bool:
        """
        Decide whether C{user} may use C{right} on C{device} now.
        """
        return right in self.rights(user, device)

    def visibleDevices(self, user: str) -> list[str]:
        """
        Return the ids of the devices C{user} may see now.
        """
        try:
            weekday, minute = self.localTime()
            return self.snapshot.visibleDevices(user, weekday, minute)
        except Exception:
            self.log.failure("listing devices failed for {user}; showing none", user=user)
            return []

    def explain(self, user: str, device: str) -> list[tuple[str, Rule | None]]:
        """
        List each right of C{user} on C{device} with the rule granting it.
        """
        return self.snapshot.explain(user, device)

    def denied(self, user: str, device: str, right: str, address: str = "") -> None:
        """
        Log and count one denial.
        """
        self.log.warn(
            "permission denied: user {user} has no {right} right on device {device} ({address})",
            user=user, device=device, right=right, address=address,
        )
        if self.metrics is not None:
            self.metrics.permissionDenied(right)  # type: ignore[attr-defined]
