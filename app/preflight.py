"""Start-up checks (`handbook serve`): every configured model and server, each probed once with
a short timeout and no retry, at the same time, and every missing piece named in one message.

Without them a machine without network spent ~106 s in the hub libraries' retries before the
first error, and the Ollama and Qdrant servers were never checked.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from handbook.config import ChatSettings, Settings
from handbook.errors import BackendUnavailable

PROBE_S = 2.0
"""How long a server may take to answer its probe."""


def problems(settings: Settings) -> list[str]:
    """What is missing, one sentence each (an empty list: everything answered)."""
    checks: list[Callable[[], str | None]] = []
    if settings.embedder.backend == "sentence-transformers":
        checks.append(lambda: _embedder(settings.embedder.model))
    if settings.store.backend == "qdrant" and settings.store.url:
        checks.append(lambda: _qdrant(settings.store.url or ""))
    if settings.chat.backend == "ollama":
        checks.append(lambda: _ollama(settings.chat, "chat"))
    extraction = settings.extraction
    if settings.graph.enabled and extraction.backend == "ollama":
        checks.append(lambda: _ollama(extraction, "extraction"))
    with ThreadPoolExecutor(max_workers=max(1, len(checks))) as pool:
        found = list(pool.map(lambda check: check(), checks))
    return [problem for problem in found if problem is not None]


def preflight(settings: Settings) -> None:
    """Raise one `BackendUnavailable` naming every missing model and server."""
    found = problems(settings)
    if found:
        listed = " ".join(f"({n}) {problem}" for n, problem in enumerate(found, 1))
        raise BackendUnavailable(f"Handbook cannot start: {listed}")


def _embedder(model: str) -> str | None:
    from ingestion.embed_st import DEFAULT_MODEL, unavailable

    try:
        return unavailable(model or DEFAULT_MODEL)
    except BackendUnavailable as exc:  # e.g. sentence-transformers not installed
        return str(exc)


def _qdrant(url: str) -> str | None:
    import httpx

    try:
        httpx.get(url.rstrip("/") + "/", timeout=PROBE_S)
    except httpx.HTTPError as exc:
        return (
            f"Qdrant at {url} cannot be reached ({type(exc).__name__}); start it (docker compose "
            "up -d qdrant) or set store.url."
        )
    return None


def _ollama(section: ChatSettings, name: str) -> str | None:
    import httpx

    host = section.host.rstrip("/")
    try:
        response = httpx.get(f"{host}/api/tags", timeout=PROBE_S)
        response.raise_for_status()
        served = {m.get("name", "") for m in response.json().get("models", [])}
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return (
            f"Ollama at {host} ({name}.host) cannot be reached ({type(exc).__name__}); start it "
            f"(ollama serve, or docker compose up -d ollama) or set {name}.host."
        )
    model = section.model
    if model in served or f"{model}:latest" in served:
        return None
    return (
        f"Ollama at {host} does not have {name}.model {model}; pull it with "
        f"`handbook models pull {model}` (or `ollama pull {model}`)."
    )
