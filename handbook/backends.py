"""The backends of each kind (embedder, vector store, chat model), by name: name -> factory.
Factories import heavy libraries when called. The document registry is another thing:
`ingestion.doc_registry`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from handbook.errors import ConfigError

T = TypeVar("T")
Factory = Callable[..., T]


class Backends(Generic[T]):
    """One per backend kind. Names are lowercase; duplicates and unknown names fail.

    >>> r: Backends[str] = Backends("greeter")
    >>> r.register("hello", lambda: "hi")
    >>> r.create("hello")
    'hi'
    >>> r.create("nope")
    Traceback (most recent call last):
    ...
    handbook.errors.ConfigError: Unknown greeter backend 'nope'. Available: hello.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Factory[T]] = {}

    def register(self, name: str, factory: Factory[T]) -> None:
        if name != name.lower() or not name:
            raise ValueError(f"{self.kind} backend names are lowercase, got {name!r}")
        if name in self._factories:
            raise ValueError(f"{self.kind} backend {name!r} is already registered")
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        del self._factories[name]

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        try:
            factory = self._factories[name]
        except KeyError:
            raise ConfigError(
                f"Unknown {self.kind} backend {name!r}. Available: {', '.join(self.names())}."
            ) from None
        return factory(*args, **kwargs)


def missing_extra(package: str, extra: str) -> ConfigError:
    """The error for a backend whose optional dependency is not installed."""
    return ConfigError(
        f"This backend needs the Python package {package!r}. "
        f"Install it with: pip install 'handbook[{extra}]'"
    )


def missing_package(package: str) -> ConfigError:
    """The error for a backend whose package is in no extra: a core dependency or an add-on."""
    return ConfigError(
        f"This backend needs the Python package {package!r}. Install it with: pip install {package}"
    )
