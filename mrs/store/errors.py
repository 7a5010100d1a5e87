"""
Errors raised by every store implementation.
"""


class StoreError(Exception):
    """
    Base class of store errors; the message is fit to show an operator.
    """


class NotFound(StoreError):
    """
    A named object does not exist, or is not in the group C{container}.
    """

    def __init__(self, kind: str, name: str, container: str | None = None) -> None:
        where = f" in {container}" if container else ""
        super().__init__(f"{kind} {name!r} not found{where}")
        self.kind = kind
        self.name = name
        self.container = container


class AlreadyExists(StoreError):
    """
    An object with this name exists already, or is already a member of the
    group C{container}; C{fix} says what to do instead.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        fix: str = "choose another name",
        container: str | None = None,
    ) -> None:
        if container:
            super().__init__(f"{kind} {name!r} is already a member of {container}")
        else:
            super().__init__(f"{kind} {name!r} already exists; {fix}")
        self.kind = kind
        self.name = name
        self.fix = fix
        self.container = container


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
