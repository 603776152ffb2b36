"""Errors a user can act on. Every message says what to do next."""


class HandbookError(Exception):
    """Base class: the CLI prints the message and exits 1, the API maps it to a status code."""


class ConfigError(HandbookError):
    """The settings are invalid or name something that does not exist."""


class BackendUnavailable(HandbookError):
    """A backend (model, store, server) cannot be used right now."""


class NotIndexed(HandbookError):
    """The question or command needs documents that are not indexed."""


class StoreLocked(BackendUnavailable):
    """Another Handbook process holds the embedded store."""


class DiskFull(BackendUnavailable):
    """Too little free space to write safely."""


class LoaderError(HandbookError):
    """One file could not be read. Reported per file; other files are still indexed."""
