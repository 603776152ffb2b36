"""German/English detection (py3langid restricted to the two languages we serve)."""

from __future__ import annotations

import re
import threading
from typing import Any

from handbook.types import Language

_lock = threading.Lock()
_identifier: Any = None
# Words that decide short questions, where statistics are weak (and loading the statistical
# model costs a second of a CLI call: most questions never need it).
_GERMAN_HINTS = re.compile(
    r"\b(wie|wo|wann|warum|welche[rsmn]?|ist|sind|der|das|und|nicht|für|mit|eine?)\b|[äöüß]",
    re.IGNORECASE,
)
_ENGLISH_HINTS = re.compile(
    r"\b(what|which|how|when|where|why|who|is|are|does|do|the|of|to|for|with|and|can|my|it)\b",
    re.IGNORECASE,
)


def _get() -> Any:
    global _identifier
    with _lock:
        if _identifier is None:
            import py3langid

            py3langid.set_languages(["de", "en"])
            _identifier = py3langid
        return _identifier


def detect_language(text: str, default: Language = "en", sample: int = 4000) -> Language:
    """Return "de" or "en" for a text; `default` when there is nothing to judge.

    >>> detect_language("Wie viel Drehmoment für die Radschrauben?")
    'de'
    >>> detect_language("torque for the wheel bolts")
    'en'
    >>> detect_language("Which Pin-Priority value makes APT install a package version?")
    'en'
    """
    text = text[:sample].strip()
    if not re.search(r"[^\W\d_]{2,}", text):
        return default
    if len(text) < 60 and _GERMAN_HINTS.search(text):
        return "de"
    if len(text) < 200:
        german = len(_GERMAN_HINTS.findall(text))
        english = len(_ENGLISH_HINTS.findall(text))
        if english >= 2 and german == 0:
            return "en"
    lang, _ = _get().classify(text)
    return "de" if lang == "de" else "en"
