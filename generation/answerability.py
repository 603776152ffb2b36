"""Is the question's specific subject in the evidence at all? If not: "not in the manuals".

Retrieval always finds the nearest passages, so an in-domain question about something the
manuals never mention (a protocol, a unit, a product name, a number) still gets on-topic
passages. The similarity score cannot tell these apart; the question's specific terms can:
identifiers and codes (HP-200, E07, IPv6, 5W-30), numbers (-20 °C), acronyms (USB, SNMP),
quoted words, options and paths (--force, /etc/fstab), and in English the names written with
a capital inside the sentence (Wayland, Profibus). Each must occur in some evidence passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from handbook.text import fold
from handbook.types import Language, Passage

_QUOTED = re.compile(r"[\"“„'‚`]([^\"“”„'‘’`]{2,40})[\"”“'‘’`]")
_TOKEN = re.compile(r"(?<![\w-])[-−]?[^\W_](?:[\w]|[-./:](?=\w))*", re.UNICODE)
_PART = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.,:])[-−]?\d+(?:[.,:]\d+)?(?![\d])")
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+)$")
# Words an English question capitalises that name nothing specific.
_COMMON_CAPS = frozenset({"i", "i'm", "is", "what", "how", "which", "can", "does", "do"})


def _number(text: str) -> str:
    """A number compared by value: `−5` = `-5`, `4,2` = `4.2`, `02:30` = `2:30`."""
    text = text.replace("−", "-").replace(",", ".")
    return re.sub(r"(?<![\d.])0+(?=\d)", "", text)


def _tokens(text: str) -> list[re.Match[str]]:
    """Word-like tokens; a hyphenated compound without digits (nftables-Firewall,
    systemd-Timer) counts as its parts, so that each part is judged on its own.

    >>> [m.group() for m in _tokens("Die nftables-Firewall der HP-200")]
    ['Die', 'nftables', 'Firewall', 'der', 'HP-200']
    """
    out: list[re.Match[str]] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if "-" in token.strip("-") and not any(c.isdigit() for c in token):
            out += _PART.finditer(text, match.start(), match.end())
        else:
            out.append(match)
    return out


def specific_terms(question: str, language: Language) -> list[str]:
    """The question's terms that name something specific.

    >>> specific_terms("Welches Hydrauliköl braucht die HP-200 unter -20 °C?", "de")
    ['HP-200', '-20']
    >>> specific_terms("How do I enable Wayland on the desktop?", "en")
    ['Wayland']
    >>> specific_terms("Does the press support PROFINET or the 'safe stop' mode?", "en")
    ['safe stop', 'PROFINET']
    >>> specific_terms("Wie fest zieht man die Radschrauben an?", "de")
    []
    >>> specific_terms("Wie lege ich mit OnCalendar einen systemd-Timer an?", "de")
    ['OnCalendar']
    """
    found: list[str] = [m.group(1).strip() for m in _QUOTED.finditer(question)]
    rest = _QUOTED.sub(" ", question)
    for match in _tokens(rest):
        token = match.group().rstrip(".:")
        letters = [c for c in token if c.isalpha()]
        has_digit = any(c.isdigit() for c in token)
        upper = sum(c.isupper() for c in letters)
        if has_digit:
            specific = True
        elif token.startswith(("-", "/")) or "/" in token or "." in token.strip("."):
            specific = len(token) > 2
        elif len(letters) >= 2 and upper == len(letters):
            specific = True  # an acronym
        elif any(c.isupper() for c in token[1:]):
            specific = True  # a capital inside a word: OnCalendar, PostgreSQL, LaTeX
        elif language == "en" and token[0].isupper():
            start = _SENTENCE_START.search(rest[: match.start()]) is not None
            specific = not start and token.lower() not in _COMMON_CAPS
        else:
            specific = False
        if specific and token not in found:
            found.append(token)
    return found


def _text(passage: Passage) -> str:
    chunk = passage.chunk
    return fold(f"{chunk.title}\n{chunk.section}\n{chunk.text}")


def _present(term: str, language: Language, passages: Sequence[Passage]) -> bool:
    if _NUMBER.fullmatch(term):
        wanted = _number(term)
        return any(wanted in {_number(n) for n in _NUMBER.findall(p.chunk.text)} for p in passages)
    key = fold(term)
    pattern = re.compile(rf"(?<!\w){re.escape(key)}" if len(key) <= 4 else re.escape(key))
    if any(pattern.search(_text(p)) for p in passages):
        return True
    # A capitalised English word (Brakes, Wayland) can only be missed in passages of the
    # question's language: in a German manual it would be written in German.
    name = term[:1].isupper() and term[1:].islower()
    return name and not any(p.chunk.language == language for p in passages)


def missing_terms(question: str, language: Language, passages: Sequence[Passage]) -> list[str]:
    """The specific terms of the question that no passage holds.

    >>> from handbook.types import Chunk
    >>> p = [Passage(Chunk("d", 0, "HLP 46 for 20 °C to 55 °C. The HP-200 press.", "T", "x",
    ...      None, (), "en"), 1.0)]
    >>> missing_terms("Which oil does the HP-200 need below -20 °C?", "en", p)
    ['-20']
    >>> missing_terms("Which oil does the HP-200 need at 20 °C?", "en", p)
    []
    """
    return [t for t in specific_terms(question, language) if not _present(t, language, passages)]
