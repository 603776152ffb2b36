from __future__ import annotations

from retrieval.sparse import encode, encode_query


def overlap(query: str, text: str, language: str = "de") -> float:
    q = encode_query(query, language)  # type: ignore[arg-type]
    doc = encode(text, language)  # type: ignore[arg-type]
    d = dict(zip(doc.indices, doc.values, strict=True))
    return sum(w * d.get(i, 0.0) for i, w in zip(q.indices, q.values, strict=True))


def test_german_inflection_and_compounds_match() -> None:
    text = "Die Radschrauben über Kreuz mit 120 Nm anziehen."
    assert overlap("Radschraube", text) > 0  # singular vs plural (stem)
    assert overlap("Schrauben am Rad", text) > 0  # compound part (character n-grams)
    assert overlap("Kühlmittel", text) == 0


def test_umlaut_and_eszett_folding() -> None:
    text = "Ölablassschraube mit Dichtring; Maße siehe Tabelle."
    assert overlap("Olablassschraube", text) > 0
    assert overlap("Masse", text) > 0
    assert overlap("ölablaßschraube", text) > 0


def test_codes_match_across_languages() -> None:
    assert overlap("What does E07 mean?", "Fehler E07: Öltemperatur zu hoch", "en") > 0


def test_vectors_are_sorted_and_positive() -> None:
    vector = encode("Motoröl 5W-30, Füllmenge 4,2 l, Motoröl prüfen", "de")
    assert list(vector.indices) == sorted(vector.indices)
    assert len(set(vector.indices)) == len(vector.indices)
    assert all(v > 0 for v in vector.values)
