"""The events of a streamed answer, in order: the retrieval result, the answer's tokens (and
what replaces them), a session's new summary, then the finished answer. The CLI, the API, the
sessions and the benchmarks consume them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from handbook.types import Answer
from retrieval.search import SearchResult


@dataclass(frozen=True)
class Retrieved:
    result: SearchResult


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Done:
    answer: Answer


@dataclass(frozen=True)
class Summarized:
    """The summarize strategy condensed the first `upto` turns of the session into `text`."""

    text: str
    upto: int


@dataclass(frozen=True)
class Replaced:
    """This text replaces the streamed answer: the extractive answer when the model's was not
    supported by the sources (`unsupported`), or the model's answer without the prompt's
    markup it copied (`cleaned`)."""

    text: str
    reason: Literal["unsupported", "cleaned"] = "unsupported"


AnswerEvent = Retrieved | Token | Replaced | Summarized | Done
