"""
The store interface: persistence of accounts, devices, groups, rules,
settings, API tokens and the audit log.

Every method returns a L{Deferred}; implementations never block the
reactor.  Every method that changes something takes the C{actor} (the
account name, or C{"cli"} / C{"system"}) and writes one audit entry in the
same transaction as the change, and bumps the store's generation number so
that other processes sharing the database notice the change.  Noting an API
token's use (L{IStore.findApiToken}) and L{IStore.audit} itself are not
changes: they bump nothing.

Methods that change a user, device, group or rule return the changed
record; removals return L{None}.  Every method validates its arguments and
fails with L{mrs.store.errors.InvalidValue} for a bad name, kind, role,
right or schedule, and with L{mrs.store.errors.NotFound} for a missing
user, device, group, rule or token (except the C{get...} and
C{findApiToken} methods, which return L{None}).

Audit entries: C{action} is one of C{user.add}, C{user.password},
C{user.enable}, C{user.disable}, C{user.role}, C{user.remove},
C{device.add}, C{device.update}, C{device.secret}, C{device.enable},
C{device.disable}, C{device.remove}, C{group.add}, C{group.remove},
C{group.member_add}, C{group.member_remove}, C{rule.add}, C{rule.update},
C{rule.remove}, C{setting.set}, C{token.add}, C{token.remove}; C{object} is
C{kind:name} with kind C{user}, C{device}, C{user_group}, C{device_group},
C{rule}, C{setting} or C{token}; C{detail} is compact JSON with sorted keys
and never holds a password, secret, hash or setting value.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IStore(Interface):
    path = Attribute("Where the data lives, for messages: a file path or a database URL.")

    def open():  # type: ignore[no-untyped-def]
        """
        Open the database, creating it and applying migrations as needed.

        @raise mrs.store.errors.SchemaTooNew: the database was written by a
            newer version; it is left untouched.
        """

    def close():  # type: ignore[no-untyped-def]
        """
        Close the database.
        """

    def generation():  # type: ignore[no-untyped-def]
        """
        Return the change counter, an L{int} bumped by every change.
        """

    def snapshot():  # type: ignore[no-untyped-def]
        """
        Return a L{mrs.store.models.Snapshot} read in one transaction.
        """

    # Users

    def addUser(name, role, passwordHash, actor, mustChangePassword=False):  # type: ignore[no-untyped-def]
        """
        Create a user and return the L{User}.

        @raise AlreadyExists: a user with that name exists.
        @raise InvalidValue: bad name or role.
        """

    def getUser(name):  # type: ignore[no-untyped-def]
        """
        Return the L{User} or L{None}.
        """

    def listUsers():  # type: ignore[no-untyped-def]
        """
        Return all users as a list of L{User}, sorted by name.
        """

    def setUserPassword(name, passwordHash, actor, mustChangePassword=False):  # type: ignore[no-untyped-def]
        """
        Replace a user's password hash and bump its credentials version.

        @raise NotFound: no such user.
        """

    def setUserEnabled(name, enabled, actor):  # type: ignore[no-untyped-def]
        """
        Enable or disable a user; disabling bumps its credentials version.
        """

    def setUserRole(name, role, actor):  # type: ignore[no-untyped-def]
        """
        Change a user's role.
        """

    def removeUser(name, actor):  # type: ignore[no-untyped-def]
        """
        Delete a user, its group memberships, rules and API tokens.
        """

    # Devices

    def addDevice(deviceId, displayName, secretHash, actor, allowPlaintext=False):  # type: ignore[no-untyped-def]
        """
        Create a device and return the L{Device}.
        """

    def getDevice(deviceId):  # type: ignore[no-untyped-def]
        """
        Return the L{Device} or L{None}.
        """

    def listDevices():  # type: ignore[no-untyped-def]
        """
        Return all devices as a list of L{Device}, sorted by id.
        """

    def updateDevice(deviceId, actor, displayName=None, allowPlaintext=None):  # type: ignore[no-untyped-def]
        """
        Change a device's display name or plaintext exception.
        """

    def setDeviceSecret(deviceId, secretHash, actor):  # type: ignore[no-untyped-def]
        """
        Replace a device's secret hash and bump its credentials version.
        """

    def setDeviceEnabled(deviceId, enabled, actor):  # type: ignore[no-untyped-def]
        """
        Enable or disable a device.
        """

    def removeDevice(deviceId, actor):  # type: ignore[no-untyped-def]
        """
        Delete a device, its group memberships and rules.
        """

    # Groups

    def addGroup(kind, name, actor):  # type: ignore[no-untyped-def]
        """
        Create an empty user group (C{kind="user"}) or device group
        (C{kind="device"}) and return the L{Group}.
        """

    def removeGroup(kind, name, actor):  # type: ignore[no-untyped-def]
        """
        Delete a group, its memberships and the rules that name it.
        """

    def listGroups(kind):  # type: ignore[no-untyped-def]
        """
        Return the groups of one kind as a list of L{Group}, with members.
        """

    def addGroupMember(kind, group, member, actor):  # type: ignore[no-untyped-def]
        """
        Put a user or device into a group.

        @raise NotFound: no such group or member.
        @raise AlreadyExists: already a member.
        """

    def removeGroupMember(kind, group, member, actor):  # type: ignore[no-untyped-def]
        """
        Take a user or device out of a group.
        """

    # Rules

    def addRule(subjectKind, subject, targetKind, target, rights, actor, schedule=None):  # type: ignore[no-untyped-def]
        """
        Grant C{rights} from a user or user group to a device or device
        group and return the L{Rule}.

        @raise NotFound: the subject or target does not exist.
        @raise InvalidValue: an unknown right or kind.
        @raise AlreadyExists: a rule with the same subject, target and
            schedule exists (its id is the error's C{name}); change its
            rights with L{setRuleRights} instead.
        """

    def setRuleRights(ruleId, rights, actor):  # type: ignore[no-untyped-def]
        """
        Replace the rights of one rule and return the L{Rule}.

        @raise NotFound: no such rule.
        @raise InvalidValue: an empty set or an unknown right.
        """

    def removeRule(ruleId, actor):  # type: ignore[no-untyped-def]
        """
        Delete one rule.
        """

    def listRules():  # type: ignore[no-untyped-def]
        """
        Return all rules as a list of L{Rule}, by id.
        """

    # Settings

    def getSetting(key):  # type: ignore[no-untyped-def]
        """
        Return a stored setting's text or L{None}.
        """

    def setSetting(key, value, actor):  # type: ignore[no-untyped-def]
        """
        Store a setting's text.
        """

    # API tokens

    def addApiToken(user, label, tokenHash, actor):  # type: ignore[no-untyped-def]
        """
        Record a new API token's SHA-256 hash for a user; return L{ApiToken}.
        """

    def listApiTokens(user):  # type: ignore[no-untyped-def]
        """
        Return a user's tokens as a list of L{ApiToken}.
        """

    def findApiToken(tokenHash):  # type: ignore[no-untyped-def]
        """
        Return the L{ApiToken} with this hash or L{None}, and note its use.
        """

    def removeApiToken(tokenId, actor):  # type: ignore[no-untyped-def]
        """
        Revoke one API token.
        """

    # Audit log

    def audit(actor, action, object, detail=""):  # type: ignore[no-untyped-def]
        """
        Append an entry for a change made outside the store, such as a
        certificate installed.
        """

    def listAudit(actor=None, action=None, object=None, since=None, limit=200):  # type: ignore[no-untyped-def]
        """
        Return audit entries, newest first, filtered by exact actor,
        action prefix, object substring and time.
        """
