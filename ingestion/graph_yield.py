"""Extraction yield: what the extraction model's replies hold, counted row by row.

LightRAG parses extraction replies and drops malformed rows without a word, and marks a
document processed even when a model found nothing. So each reply is also counted here
(`count_rows`): entities, relations, malformed rows and empty answers per chunk, summed per
document and model for `handbook graph stats`.
"""

from __future__ import annotations

from dataclasses import dataclass

TUPLE = "<|#|>"  # LightRAG 1.5.7 PROMPTS["DEFAULT_TUPLE_DELIMITER"]
COMPLETE = "<|COMPLETE|>"  # PROMPTS["DEFAULT_COMPLETION_DELIMITER"]


@dataclass
class Yield:
    """What extraction found, summed over chunks."""

    chunks: int = 0
    entities: int = 0
    relations: int = 0
    malformed: int = 0
    empty: int = 0

    def add(self, other: Yield) -> None:
        self.chunks += other.chunks
        self.entities += other.entities
        self.relations += other.relations
        self.malformed += other.malformed
        self.empty += other.empty

    @property
    def entities_per_chunk(self) -> float:
        return self.entities / self.chunks if self.chunks else 0.0

    @property
    def relations_per_chunk(self) -> float:
        return self.relations / self.chunks if self.chunks else 0.0


def count_rows(reply: str) -> Yield:
    """Count one extraction reply's rows as LightRAG 1.5.7 would accept or drop them.

    >>> count_rows("entity<|#|>Pumpe<|#|>Bauteil<|#|>Fördert Öl.\\n"
    ...            "relation<|#|>Pumpe<|#|>Ventil<|#|>speist<|#|>Die Pumpe speist das Ventil.\\n"
    ...            "entity<|#|>Kaputt<|#|>nur drei\\n<|COMPLETE|>")
    Yield(chunks=1, entities=1, relations=1, malformed=1, empty=0)
    >>> count_rows("I cannot find any entities.")
    Yield(chunks=1, entities=0, relations=0, malformed=1, empty=1)
    """
    found = Yield(chunks=1)
    for line in reply.splitlines():
        row = line.strip().removesuffix(COMPLETE).strip()
        if not row:
            continue
        fields = [part.strip() for part in row.split(TUPLE)]
        kind = fields[0].lower()
        if kind == "entity" and len(fields) == 4 and fields[1] and fields[3]:
            found.entities += 1
        elif kind == "relation" and len(fields) == 5 and fields[1] and fields[2] and fields[4]:
            found.relations += 1
        else:
            found.malformed += 1
    found.empty = int(found.entities == 0 and found.relations == 0)
    return found
