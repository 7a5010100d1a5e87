"""
Errors raised by every store implementation.
"""


class StoreError(Exception):
    """
    Base class of store errors; the message is fit to show an operator.
    """


class NotFound(StoreError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} not found")
        self.kind = kind
        self.name = name


class AlreadyExists(StoreError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} already exists; choose another name")
        self.kind = kind
        self.name = name


class InvalidValue(StoreError):
    def __init__(self, kind: str, value: str, fix: str) -> None:
        super().__init__(f"invalid {kind} {value!r}: {fix}")
        self.kind = kind
        self.value = value
        self.fix = fix


class SchemaTooNew(StoreError):
    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path}: database schema version {found} is newer than this "
            f"server supports ({supported}); run the newer MRS version that "
            f"wrote it, or restore a backup made by this version"
        )
        self.found = found
        self.supported = supported
