"""
Tests for L{mrs.passwords}.
"""

from __future__ import annotations

import string

from twisted.trial.unittest import SynchronousTestCase, TestCase

from mrs.passwords import (
    generatePassword,
    hashPassword,
    hashPasswordInThread,
    needsRehash,
    verifyPassword,
    verifyPasswordInThread,
)


class HashPasswordTests(SynchronousTestCase):
    def test_roundTrip(self) -> None:
        """
        A hash is an Argon2id string, never the password, and verifies only
        the password it was made from.
        """
        passwordHash = hashPassword("correct horse")
        self.assertTrue(passwordHash.startswith("$argon2id$"))
        self.assertNotIn("correct horse", passwordHash)
        self.assertTrue(verifyPassword(passwordHash, "correct horse"))
        self.assertFalse(verifyPassword(passwordHash, "correct horsE"))
        self.assertFalse(verifyPassword(passwordHash, ""))
        self.assertFalse(needsRehash(passwordHash))

    def test_saltedHashesDiffer(self) -> None:
        self.assertNotEqual(hashPassword("same"), hashPassword("same"))

    def test_emptyPasswordRejected(self) -> None:
        error = self.assertRaises(ValueError, hashPassword, "")
        self.assertEqual(str(error), "the password is empty; give at least one character")

    def test_malformedHash(self) -> None:
        """
        A hash that cannot be parsed verifies nothing and raises nothing.
        """
        for bad in ("", "plain text", "$argon2id$v=19$m=1$broken", "$2b$12$notargon"):
            self.assertFalse(verifyPassword(bad, "password"), bad)
        self.assertFalse(verifyPassword(None, "password"))  # type: ignore[arg-type]
        self.assertTrue(needsRehash("plain text"))

    def test_nonAsciiPassword(self) -> None:
        passwordHash = hashPassword("Žiga šofer ✓")
        self.assertTrue(verifyPassword(passwordHash, "Žiga šofer ✓"))
        self.assertFalse(verifyPassword(passwordHash, "Ziga sofer ✓"))


class GeneratePasswordTests(SynchronousTestCase):
    def test_shape(self) -> None:
        """
        Generated passwords are 20 URL-safe characters and differ each time.
        """
        alphabet = set(string.ascii_letters + string.digits + "-_")
        passwords = {generatePassword() for _ in range(50)}
        self.assertEqual(len(passwords), 50)
        for password in passwords:
            self.assertEqual(len(password), 20)
            self.assertLessEqual(set(password), alphabet)


class ThreadedTests(TestCase):
    async def test_inThread(self) -> None:
        passwordHash = await hashPasswordInThread("s3cret")
        self.assertTrue(await verifyPasswordInThread(passwordHash, "s3cret"))
        self.assertFalse(await verifyPasswordInThread(passwordHash, "other"))
