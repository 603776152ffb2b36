"""Task routing: which kind of answer a question asks for, by rules in German and English.

The fine-tuned adapter expects prompts prefixed `[{TASK}] {instruction}`; the task is also shown
in `ask --json` as "task". Rules are checked in order: a question about a fault is
TROUBLESHOOT even when it asks "how"; one asking for a value ("how much", "wie fest") is a
SPEC; "how do I" is a PROCEDURE; a "which / when" lookup is a SPEC; the rest is EXPLAIN.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from handbook.types import Message, Role, Task

if TYPE_CHECKING:
    from handbook.protocols import ChatModel

_TROUBLESHOOT = re.compile(
    r"\b(fault|error|fehler\w*|störung\w*|warn\w*|alarm\w*|defekt\w*|problem\w*"
    r"|undicht\w*|leak\w*|quietsch\w*|noise|geräusch\w*"
    r"|(does|do|will|won)n?'?t (start|work|run|crank)"
    r"|not (start|work|run)|springt nicht|funktioniert nicht|(shows?|reads?|zeigt) \d+"
    r"|wire break|drahtbruch|troubleshoot\w*|was soll ich tun|what should i (do|check)"
    r"|what could be wrong|ursache)\b|\b[ef]\d{2,3}\b|kontrollleuchte|leuchtet",
    re.IGNORECASE,
)
# Asking for a value: checked before PROCEDURE ("Wie fest zieht man ... an?" wants the torque).
_SPEC_VALUE = re.compile(
    r"\b(how (much|many|long|high|big|often|tight)|wie (viel\w*|hoch|groß|lange?|oft|fest|schwer)"
    r"|in welchen abständen|(maximum|minimum|default|nominal|max\.?|min\.?) \w+|wear limit"
    r"|value range|wertebereich|rating|(anzugs)?drehmoment|torque|füllmenge|capacity"
    r"|(luft|reifen)druck|tyre pressure|tire pressure)\b",
    re.IGNORECASE,
)
_PROCEDURE = re.compile(
    r"\b(how (do|can|should) (i|you|we)|how to|steps?|procedure|anleitung|vorgehen|schritt\w*"
    r"|wie \w+ (ich|man)|replace|install|wiring|wechseln|tauschen|einbauen|ausbauen"
    r"|anschließen|in betrieb nehmen|commission\w*)\b",
    re.IGNORECASE,
)
# A "which / when" question about a part or interval is a lookup in the specification.
_SPEC_LOOKUP = re.compile(
    r"\b(which|welche[rsnm]?|when do|wann)\b",
    re.IGNORECASE,
)
_RULES: tuple[tuple[Task, re.Pattern[str]], ...] = (
    (Task.TROUBLESHOOT, _TROUBLESHOOT),
    (Task.SPEC, _SPEC_VALUE),
    (Task.PROCEDURE, _PROCEDURE),
    (Task.SPEC, _SPEC_LOOKUP),
)


def route(question: str, tasks: Sequence[Task] = tuple(Task)) -> Task:
    """The first rule that matches and names one of `tasks`; else EXPLAIN (or the first task
    when the model knows no EXPLAIN).

    >>> route("Wie viel Drehmoment?", tasks=[Task.EXPLAIN, Task.PROCEDURE])
    <Task.EXPLAIN: 'EXPLAIN'>

    >>> route("Wie viel Drehmoment für die Radschrauben?")
    <Task.SPEC: 'SPEC'>
    >>> route("How do I change the oil filter?")
    <Task.PROCEDURE: 'PROCEDURE'>
    >>> route("Was bedeutet der Fehlercode E07?")
    <Task.TROUBLESHOOT: 'TROUBLESHOOT'>
    >>> route("Was ist der Unterschied zwischen ST und FBD?")
    <Task.EXPLAIN: 'EXPLAIN'>
    """
    for task, pattern in _RULES:
        if task in tasks and pattern.search(question):
            return task
    return Task.EXPLAIN if Task.EXPLAIN in tasks else tasks[0]


def prefixed(task: Task, instruction: str, template: str = "[{TASK}] {instruction}") -> str:
    """The adapter's prompt format.

    >>> prefixed(Task.SPEC, "Drehmoment der Radschrauben?")
    '[SPEC] Drehmoment der Radschrauben?'
    """
    return template.format(TASK=task.value, instruction=instruction)


CLASSIFY = (
    "Classify the user's question about a technical manual. Reply with one word: "
    "SPEC (asks for a value, rating or specification), PROCEDURE (asks for steps), "
    "EXPLAIN (asks what something is or how it works), TROUBLESHOOT (a fault or error)."
)


def parse_task(reply: str, tasks: Sequence[Task]) -> Task | None:
    """The first of `tasks` named in a model's reply.

    >>> parse_task(" troubleshoot.", list(Task))
    <Task.TROUBLESHOOT: 'TROUBLESHOOT'>
    >>> parse_task("I think it is a question", list(Task)) is None
    True
    """
    found = re.search(r"\b(" + "|".join(t.value for t in tasks) + r")\b", reply.upper())
    return Task(found.group(1)) if found else None


async def route_with_model(chat: ChatModel, question: str, tasks: Sequence[Task]) -> Task:
    """Ask the model for the task; the rules decide when its reply names none of `tasks`."""
    messages = [Message(Role.SYSTEM, CLASSIFY), Message(Role.USER, question)]
    reply = "".join([piece async for piece in chat.stream(messages)])
    return parse_task(reply, tasks) or route(question, tasks)
