"""Which earlier turns of a session the model sees: none, truncate, window, summarize.

Token counts use the answering model's own tokenizer (`ChatModel.count_tokens`). Turns are kept
or dropped whole: half a question-answer pair confuses small models more than none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from handbook.config import HistorySettings
from handbook.types import Language, Message, Role

Count = Callable[[str], int]

SUMMARY_LABEL = {
    "en": "Summary of the conversation so far:",
    "de": "Zusammenfassung des bisherigen Gesprächs:",
}
SUMMARIZE = {
    "en": (
        "Summarize this conversation in at most {words} words. Keep names, numbers, part "
        "names and what the user wants to do. Write only the summary."
    ),
    "de": (
        "Fasse dieses Gespräch in höchstens {words} Wörtern zusammen. Behalte Namen, Zahlen, "
        "Teilebezeichnungen und was der Nutzer vorhat. Schreibe nur die Zusammenfassung."
    ),
}


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str

    def messages(self) -> list[Message]:
        return [Message(Role.USER, self.question), Message(Role.ASSISTANT, self.answer)]

    def tokens(self, count: Count) -> int:
        return count(self.question) + count(self.answer)


@dataclass(frozen=True)
class History:
    """A session's earlier turns and the summary of its first `summary_upto` turns."""

    turns: tuple[Turn, ...] = ()
    summary: str = ""
    summary_upto: int = 0


@dataclass(frozen=True)
class Selection:
    kept: tuple[Turn, ...]  # shown to the model as they were
    older: tuple[Turn, ...]  # dropped, or summarized by the summarize strategy


def select(turns: Sequence[Turn], settings: HistorySettings, count: Count) -> Selection:
    """
    >>> turns = [Turn("q1", "a1"), Turn("q2", "a2"), Turn("q3", "a3")]
    >>> select(turns, HistorySettings(strategy="truncate", turns=2), len).kept
    (Turn(question='q2', answer='a2'), Turn(question='q3', answer='a3'))
    >>> select(turns, HistorySettings(strategy="window", budget_tokens=64), lambda t: 30).kept
    (Turn(question='q3', answer='a3'),)
    >>> select(turns, HistorySettings(strategy="none"), len).kept
    ()
    """
    turns = tuple(turns)
    if settings.strategy == "none":
        return Selection((), turns)
    if settings.strategy == "truncate":
        cut = max(0, len(turns) - settings.turns)
        return Selection(turns[cut:], turns[:cut])
    return fit(turns, settings.budget_tokens, count)


def fit(turns: Sequence[Turn], budget: int, count: Count) -> Selection:
    """The newest whole turns whose tokens add up to at most `budget`."""
    turns = tuple(turns)
    used = 0
    cut = len(turns)
    while cut > 0:
        cost = turns[cut - 1].tokens(count)
        if used + cost > budget:
            break
        used += cost
        cut -= 1
    return Selection(turns[cut:], turns[:cut])


def summary_request(older: Sequence[Turn], language: Language, words: int) -> list[Message]:
    transcript = "\n".join(f"User: {t.question}\nAssistant: {t.answer}" for t in older)
    return [
        Message(Role.SYSTEM, SUMMARIZE[language].format(words=words)),
        Message(Role.USER, transcript),
    ]


def as_messages(kept: Sequence[Turn], summary: str, language: Language) -> list[Message]:
    summary_messages = (
        [Message(Role.SYSTEM, f"{SUMMARY_LABEL[language]} {summary}")] if summary else []
    )
    return [*summary_messages, *(m for turn in kept for m in turn.messages())]
