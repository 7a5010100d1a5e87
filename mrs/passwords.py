"""
Password and device secret hashing with Argon2id (argon2-cffi).

One hash costs 64 MiB of memory and, by design, a noticeable amount of CPU
(about 0.1 s on one core of a 2026 x86-64 server), so code on the reactor
thread uses L{hashPasswordInThread} and L{verifyPasswordInThread}; the
synchronous functions are for the command line and for worker threads.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

# Since argon2-cffi 21.2.0 the defaults are its RFC_9106_LOW_MEMORY profile:
# Argon2id, 64 MiB, 3 passes, 4 lanes.
_hasher = PasswordHasher()

#: Bytes of randomness in a generated password: 15 bytes give 20
#: URL-safe base64 characters.
GENERATED_PASSWORD_BYTES = 15


def hashPassword(password: str) -> str:
    """
    Hash C{password} with a fresh random salt and return the encoded hash,
    such as C{"$argon2id$v=19$m=65536,t=3,p=4$..."}.

    @raise ValueError: for an empty password.
    """
    if not isinstance(password, str) or not password:
        raise ValueError("the password is empty; give at least one character")
    return _hasher.hash(password)


def verifyPassword(passwordHash: str, password: str) -> bool:
    """
    Check C{password} against an encoded hash from L{hashPassword}.

    @return: C{True} on a match; C{False} on a mismatch, an empty password
        or a hash that cannot be parsed, which never raise.
    """
    if not isinstance(password, str) or not password or not isinstance(passwordHash, str):
        return False
    try:
        return _hasher.verify(passwordHash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needsRehash(passwordHash: str) -> bool:
    """
    Tell whether a hash was made with weaker parameters than the current
    ones, so the caller should store a new hash after the next good login.
    """
    try:
        return _hasher.check_needs_rehash(passwordHash)
    except (InvalidHashError, ValueError):
        return True


def hashPasswordInThread(password: str) -> Deferred[str]:
    """
    Run L{hashPassword} in the reactor's thread pool.
    """
    return deferToThread(hashPassword, password)


def verifyPasswordInThread(passwordHash: str, password: str) -> Deferred[bool]:
    """
    Run L{verifyPassword} in the reactor's thread pool.
    """
    return deferToThread(verifyPassword, passwordHash, password)


def generatePassword() -> str:
    """
    Return a random password of 20 URL-safe characters (120 bits).
    """
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


#: Shortest password accepted for a user account, by every route that sets
#: one (the admin site, the API and the command line).
MIN_PASSWORD_LENGTH = 12


def passwordProblem(password: str) -> str | None:
    """
    Return why C{password} is too weak for a user account, or L{None}.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return (f"the password is too short; use at least {MIN_PASSWORD_LENGTH} characters "
                f"(a passphrase of several words is easy to remember)")
    return None
