from __future__ import annotations

import pytest

from generation.tasks import Task, prefixed, route

CASES = [
    ("Wie viel Drehmoment für die Radschrauben?", Task.SPEC),
    ("What torque should the wheel bolts be tightened to?", Task.SPEC),
    ("Welche Sicherung gehört zur Heckscheibenheizung?", Task.SPEC),
    ("How often does the return filter need replacing?", Task.SPEC),
    ("Wie wechsle ich das Rad?", Task.PROCEDURE),
    ("How do I wire a 4-20 mA transmitter?", Task.PROCEDURE),
    ("Wie schließe ich den Messumformer an?", Task.PROCEDURE),
    ("Was ist der Unterschied zwischen ST und FBD?", Task.EXPLAIN),
    ("What does the ET output of a timer show?", Task.EXPLAIN),
    ("Die Öldruckkontrollleuchte geht an. Was soll ich tun?", Task.TROUBLESHOOT),
    ("The press HMI shows E04. How do I fix it?", Task.TROUBLESHOOT),
    ("Der Motor springt nicht an.", Task.TROUBLESHOOT),
    ("My analog input shows 32767. What does that mean?", Task.TROUBLESHOOT),
]


@pytest.mark.parametrize(("question", "task"), CASES)
def test_route(question: str, task: Task) -> None:
    assert route(question) is task


def test_prefix_format_is_configurable() -> None:
    assert prefixed(Task.PROCEDURE, "Rad wechseln") == "[PROCEDURE] Rad wechseln"
    assert prefixed(Task.SPEC, "x", template="<{TASK}>: {instruction}") == "<SPEC>: x"
