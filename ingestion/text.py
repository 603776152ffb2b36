"""What every text-based loader shares: decoding bytes to text, the heading depth kept."""

from __future__ import annotations

from handbook.errors import LoaderError

HEADING_LIMIT = 6
"""Heading levels kept in a section's heading path."""


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else the encoding charset-normalizer finds.

    >>> text = "Die Größe der Ölablassschraube beträgt 14 mm; Anzugsdrehmoment 30 Nm."
    >>> decode_text(text.encode("cp1252")) == text
    True
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise LoaderError("broken UTF-16 text; save the file as UTF-8") from None
    if b"\x00" in data[:8192]:
        raise LoaderError("binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Windows-1252 is by far the most common legacy encoding of German/English manuals, and
    # statistical detection is unreliable on short files: take it when it reads as such text.
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        western = ""
    unusual = [c for c in western if ord(c) > 127 and c not in _WESTERN_EXTRA]
    if western and len(unusual) <= len(western) // 200:
        return western
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoaderError("unknown text encoding; save the file as UTF-8")
    return str(best)


_WESTERN_EXTRA = frozenset("äöüÄÖÜßéèêáàâçñ€°µ²³§–—„“”‚‘’«»·±×÷½¼¾©®™…")
