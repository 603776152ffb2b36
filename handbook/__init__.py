"""Handbook: a self-hosted knowledge assistant for technical manuals."""

__version__ = "0.1.0"


def version() -> str:
    """The installed distribution's version (this checkout's `__version__` when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("handbook")
    except PackageNotFoundError:
        return __version__
