"""
The key and certificate files in the data directory.

Layout under C{DATA_DIR/tls/} (directory mode 0700):

  - C{server.key}: the private key, unencrypted PKCS#8 PEM, mode 0600;
  - C{server.crt}: the server certificate followed by its intermediates;
  - C{pending.key}, C{pending.csr}: the key of a CSR waiting for its
    certificate, mode 0600, and the CSR;
  - C{backup/YYYYMMDDTHHMMSSZ/}: the pair that each install replaced.

Every function blocks on the file system; call them in a thread.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

KEY_MODE = 0o600
CERT_MODE = 0o644
DIRECTORY_MODE = 0o700


class StorageError(Exception):
    """
    The TLS files are missing, incomplete or cannot be written; the
    message names the file and the fix.
    """


def atomicWrite(path: Path, data: bytes, mode: int) -> None:
    """
    Replace C{path} with C{data}: write a temporary file with C{mode} in the
    same directory, fsync it, rename it over C{path} and fsync the directory,
    so a crash leaves either the old or the new content.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(descriptor, mode)
        view = memoryview(data)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
    _syncDirectory(path.parent)


def _syncDirectory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class FileState:
    """
    Modification time and size of the key and certificate files, to notice
    a change made by another process.
    """

    key: tuple[int, int] | None
    certificate: tuple[int, int] | None


class TLSFiles:
    """
    The TLS files of one data directory.
    """

    def __init__(self, dataDir: Path) -> None:
        self.directory = Path(dataDir) / "tls"
        self.keyPath = self.directory / "server.key"
        self.certificatePath = self.directory / "server.crt"
        self.pendingKeyPath = self.directory / "pending.key"
        self.pendingRequestPath = self.directory / "pending.csr"
        self.backupRoot = self.directory / "backup"

    def ensureDirectory(self) -> None:
        self.directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)

    def exists(self) -> bool:
        """
        Whether a pair is stored.

        @raise StorageError: when only one of the two files exists.
        """
        haveKey = self.keyPath.exists()
        haveCertificate = self.certificatePath.exists()
        if haveKey != haveCertificate:
            present, missing = (
                (self.keyPath, self.certificatePath)
                if haveKey
                else (self.certificatePath, self.keyPath)
            )
            raise StorageError(
                f"{missing} is missing but {present} exists; restore the missing file from "
                f"{self.backupRoot}, or move {present} away so the server generates a new "
                f"pair, or install one with: mrs tls install KEY CERT"
            )
        return haveKey

    def read(self) -> tuple[bytes, bytes]:
        """
        Return the stored key and certificate PEM.
        """
        return self.keyPath.read_bytes(), self.certificatePath.read_bytes()

    def state(self) -> FileState:
        return FileState(_stat(self.keyPath), _stat(self.certificatePath))

    def write(self, keyPem: bytes, certificatePem: bytes, now: datetime) -> Path | None:
        """
        Store a new pair, keeping the current one as a backup.

        @return: the backup directory, or L{None} when there was no pair.
        """
        self.ensureDirectory()
        backup = None
        if self.keyPath.exists() and self.certificatePath.exists():
            backup = self._backupDirectory(now)
            backup.mkdir(mode=DIRECTORY_MODE, parents=True)
            shutil.copy2(self.keyPath, backup / self.keyPath.name)
            shutil.copy2(self.certificatePath, backup / self.certificatePath.name)
        atomicWrite(self.keyPath, keyPem, KEY_MODE)
        atomicWrite(self.certificatePath, certificatePem, CERT_MODE)
        return backup

    def restore(self, backup: Path | None) -> None:
        """
        Put back the pair saved in C{backup} by L{write}; without a backup,
        remove the pair that L{write} stored.
        """
        if backup is None:
            self.keyPath.unlink(missing_ok=True)
            self.certificatePath.unlink(missing_ok=True)
            return
        atomicWrite(self.keyPath, (backup / self.keyPath.name).read_bytes(), KEY_MODE)
        atomicWrite(
            self.certificatePath, (backup / self.certificatePath.name).read_bytes(), CERT_MODE
        )

    def _backupDirectory(self, now: datetime) -> Path:
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        candidate = self.backupRoot / stamp
        counter = 1
        while candidate.exists():
            counter += 1
            candidate = self.backupRoot / f"{stamp}-{counter}"
        return candidate

    def writePending(self, keyPem: bytes, requestPem: bytes) -> None:
        """
        Store the key and CSR of a request waiting for its certificate,
        replacing an earlier request.
        """
        self.ensureDirectory()
        atomicWrite(self.pendingKeyPath, keyPem, KEY_MODE)
        atomicWrite(self.pendingRequestPath, requestPem, CERT_MODE)

    def readPending(self) -> tuple[bytes, bytes] | None:
        """
        Return the pending key and CSR PEM, or L{None}.
        """
        try:
            return self.pendingKeyPath.read_bytes(), self.pendingRequestPath.read_bytes()
        except FileNotFoundError:
            return None

    def removePending(self) -> None:
        self.pendingKeyPath.unlink(missing_ok=True)
        self.pendingRequestPath.unlink(missing_ok=True)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        result = path.stat()
    except FileNotFoundError:
        return None
    return result.st_mtime_ns, result.st_size
