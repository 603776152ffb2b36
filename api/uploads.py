"""Uploaded documents: safe file names, type checks on the content, bounded writes.

An upload is written under `HANDBOOK_HOME/uploads` and nowhere else: the client's file name is
reduced to a plain name (no folders, no `..`, no control characters), and the bytes must look
like the type the name claims (a `.pdf` starts with `%PDF-`, a `.docx` is a ZIP archive, text
types decode as UTF-8 without NUL bytes).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path

from handbook.errors import HandbookError

CHUNK = 1 << 20
MAX_NAME_BYTES = 200
"""Longest stored name, in UTF-8 bytes: with `save`'s `.NAME.part` it stays under the 255
bytes that file systems allow."""


class UploadRejected(HandbookError):
    """The upload is not accepted; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def safe_name(name: str, extensions: tuple[str, ...]) -> str:
    """A client's file name reduced to a plain, safe one, or `UploadRejected`.

    >>> safe_name("../../etc/Wartung Ölwechsel.pdf", (".pdf",))
    'Wartung Ölwechsel.pdf'
    >>> safe_name("C:\\\\manuals\\\\a.md", (".md",))
    'a.md'
    >>> safe_name("..", (".md",))
    Traceback (most recent call last):
    api.uploads.UploadRejected: The file name '..' has no usable name; rename the file.
    >>> len(safe_name("ä" * 300 + ".md", (".md",)).encode())  # file systems allow 255 bytes
    199
    """
    base = re.split(r"[/\\\\]", unicodedata.normalize("NFC", name))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    if not base or not Path(base).stem:
        raise UploadRejected(f"The file name {name!r} has no usable name; rename the file.", 400)
    suffix = Path(base).suffix
    if suffix.lower() not in extensions:
        raise UploadRejected(
            f"{base[:200]}: unsupported file type. Handbook reads {', '.join(extensions)}.", 415
        )
    if len(base.encode()) > MAX_NAME_BYTES:  # keep the type; cut the stem on a character
        room = MAX_NAME_BYTES - len(suffix.encode())
        base = Path(base).stem.encode()[:room].decode(errors="ignore").rstrip() + suffix
    return base


def check_content(name: str, head: bytes) -> None:
    """Refuse bytes that are not what the file name says (a disguised upload).

    >>> check_content("a.pdf", b"%PDF-1.7 ...")
    >>> check_content("a.pdf", b"MZ\\x90\\x00")
    Traceback (most recent call last):
    api.uploads.UploadRejected: a.pdf is named .pdf but is not a PDF file.
    """
    suffix = Path(name).suffix.lower()
    if not head:
        raise UploadRejected(f"{name} is empty.", 422)
    if suffix == ".pdf":
        ok, kind = head.startswith(b"%PDF-"), "a PDF file"
    elif suffix == ".docx":
        ok, kind = head.startswith(b"PK\x03\x04"), "a Word (.docx) document"
    else:
        try:
            head.decode("utf-8")
            ok = b"\x00" not in head
        except UnicodeDecodeError as exc:
            ok = exc.start > len(head) - 4  # a character cut at the end of the sample
        kind = "a UTF-8 text file"
    if not ok:
        raise UploadRejected(f"{name} is named {suffix} but is not {kind}.", 415)


REPLACED = ".replaced"
"""Under uploads/: the earlier file of a name uploaded again, kept until the new one is indexed
(then deleted) or fails to index (then put back: a broken upload never replaces a good file)."""


def kept_copy(target: Path) -> Path:
    return target.parent / REPLACED / target.name


def restore_kept(uploads: Path) -> list[Path]:
    """At start-up: earlier files whose replacements were never indexed (the server stopped
    first) are put back; their replacements are dropped. Returns the restored files."""
    folder = uploads / REPLACED
    restored = []
    for kept in sorted(folder.iterdir()) if folder.is_dir() else []:
        kept.replace(uploads / kept.name)
        restored.append(uploads / kept.name)
    if restored:
        folder.rmdir()
    return restored


async def save(chunks: AsyncIterator[bytes], target: Path, max_bytes: int) -> Path | None:
    """Write an upload to `target` atomically, checking its type and size as it arrives.
    Nothing is left behind when it is refused. A file already at `target` is kept aside
    (`kept_copy`) unless an earlier file is kept already; returns the kept copy, if made."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    size = 0
    try:
        with partial.open("wb") as out:
            async for chunk in chunks:
                if size == 0:
                    check_content(target.name, chunk[:4096])
                size += len(chunk)
                if size > max_bytes:
                    raise UploadRejected(
                        f"{target.name} is larger than the {max_bytes / CHUNK:g} MB upload limit "
                        "(api.max_upload_mb).",
                        413,
                    )
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            check_content(target.name, b"")
        return await asyncio.to_thread(_put, partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _put(partial: Path, target: Path) -> Path | None:
    kept = kept_copy(target)
    keep = target.exists() and not kept.exists()
    if keep:
        kept.parent.mkdir(exist_ok=True)
        target.replace(kept)
    partial.replace(target)
    return kept if keep else None
