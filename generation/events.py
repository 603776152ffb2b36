"""The events of a streamed answer, in order: the retrieval result, the answer's tokens (and
what replaces them), a session's new summary, then the finished answer. The CLI, the API, the
sessions and the benchmarks consume them. Each event a client sees has one JSON form (`name`,
`to_dict()`): the API's Server-Sent Events are these; the summary stays with the session."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from handbook.types import Answer
from retrieval.search import SearchResult


@dataclass(frozen=True)
class Retrieved:
    result: SearchResult
    name: ClassVar[str] = "sources"

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict()


@dataclass(frozen=True)
class Token:
    text: str
    name: ClassVar[str] = "token"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Done:
    answer: Answer
    name: ClassVar[str] = "done"

    def to_dict(self) -> dict[str, Any]:
        return self.answer.to_dict()


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
    name: ClassVar[str] = "replaced"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


AnswerEvent = Retrieved | Token | Replaced | Summarized | Done
