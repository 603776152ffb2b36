"""Hostile documents: decompression bombs, deep nesting, gigantic lines, files that are slow
to parse. Each is a real file made here; each must fail alone with a reason that says what to
do (or be read), in bounded memory and time, and leave what is already indexed as it was.

Memory is measured in a fresh Python process (`measure`): the growth of its own peak RSS while
it loads the file, and the peak RSS of the child process that `ingestion.isolation` reads it in.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.handbook import Handbook
from handbook.config import ChunkingSettings, IndexSettings, Settings
from handbook.errors import LoaderError
from ingestion.chunking import MAX_TOKEN_CHARS, chunk_document, count_tokens, split_section
from ingestion.loaders import MAX_ZIP_MEMBERS, load_document
from ingestion.pipeline import IndexReport, Status
from tests.conftest import SAMPLES, make_settings

MB = 1024 * 1024

# --- building hostile files ---------------------------------------------------------------


@dataclass(frozen=True)
class Deflated:
    """Raw deflate data and the checksums of what it inflates to."""

    data: bytes
    size: int
    crc32: int
    adler32: int


def deflate_repeated(
    block: bytes, times: int, prefix: bytes = b"", suffix: bytes = b""
) -> Deflated:
    """prefix + block * times + suffix, deflated without compressing gigabytes: after a full
    flush the compressor forgets what came before, so every repetition compresses the same."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
    once = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    assert packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH) == once
    crc, adler = zlib.crc32(prefix), zlib.adler32(prefix)
    for _ in range(times):
        crc, adler = zlib.crc32(block, crc), zlib.adler32(block, adler)
    crc, adler = zlib.crc32(suffix, crc), zlib.adler32(suffix, adler)
    data = head + once * times + packer.compress(suffix) + packer.flush()
    return Deflated(data, len(prefix) + len(block) * times + len(suffix), crc, adler)


def write_zip(path: Path, members: list[tuple[str, Deflated, int]]) -> Path:
    """A ZIP of (name, deflated data, declared uncompressed size); the declared size may lie."""
    out = io.BytesIO()
    directory = io.BytesIO()
    for name, member, declared in members:
        encoded = name.encode()
        offset = out.tell()
        fields = (8, 0, 33, member.crc32, len(member.data), declared, len(encoded))
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, *fields, 0) + encoded)
        out.write(member.data)
        directory.write(
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, *fields, 0, 0, 0, 0, 0, offset)
            + encoded
        )
    start, listing = out.tell(), directory.getvalue()
    out.write(listing)
    count = min(len(members), 0xFFFF)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(listing), start, 0))
    path.write_bytes(out.getvalue())
    return path


def deflated(data: bytes) -> Deflated:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = packer.compress(data) + packer.flush()
    return Deflated(packed, len(data), zlib.crc32(data), zlib.adler32(data))


def docx_parts(text: str = "Torque of the Zorblax flange bolt: 47 Nm.") -> dict[str, bytes]:
    """The parts of a real DOCX made by python-docx."""
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def docx_bomb(path: Path, inflated_mb: int, *, declared: int | None = None) -> Path:
    """A real DOCX whose word/document.xml inflates to `inflated_mb` MB of spaces."""
    parts = docx_parts()
    head = parts["word/document.xml"].split(b"<w:body>")[0] + b"<w:body>"
    bomb = deflate_repeated(b" " * MB, inflated_mb, prefix=head)
    members = [
        (name, bomb, bomb.size if declared is None else declared)
        if name == "word/document.xml"
        else (name, deflated(data), len(data))
        for name, data in parts.items()
    ]
    return write_zip(path, members)


def write_pdf(
    path: Path, content: bytes, extra: Sequence[bytes] = (), resources: bytes = b""
) -> Path:
    """A one-page PDF: its content stream object (4), a Helvetica font (5), then `extra`
    objects (6, 7...) that `resources` may name."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> " + resources + b" >> >>",
        content,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *extra,
    ]
    return _write_objects(path, objects)


def _write_objects(path: Path, objects: Sequence[bytes]) -> Path:
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


TEXT = b"BT /F1 12 Tf 72 720 Td (Zorblax flange bolt: 47 Nm) Tj ET\n"


def flate_stream(stream: Deflated, dictionary: bytes = b"") -> bytes:
    """A FlateDecode stream object (zlib framing around the raw deflate data)."""
    data = b"\x78\xda" + stream.data + struct.pack(">I", stream.adler32)
    return (
        b"<< /Length %d /Filter /FlateDecode %s >>\nstream\n" % (len(data), dictionary)
        + data
        + b"\nendstream"
    )


def pdf_bomb(path: Path, inflated_mb: int) -> Path:
    """Text, then a content stream that inflates to `inflated_mb` MB of spaces."""
    return write_pdf(path, flate_stream(deflate_repeated(b" " * MB, inflated_mb, prefix=TEXT)))


def pdf_operators(path: Path, operator: bytes, inflated_mb: int) -> Path:
    """Text, then `inflated_mb` MB of one operator repeated: tiny on disk, heavy to parse."""
    block = operator * (MB // len(operator))
    stream = deflate_repeated(block, inflated_mb, prefix=TEXT + b"BT /F1 1 Tf ")
    return write_pdf(path, flate_stream(stream))


def pdf_pages(path: Path, pages: int, content: bytes) -> Path:
    """`pages` pages that all draw the same content stream object (stored once)."""
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 3 0 R >> >> >>"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        content,
        *[page] * pages,
    ]
    return _write_objects(path, objects)


def pdf_image_bomb(path: Path, side: int) -> Path:
    """Text, and a side x side grey image (Flate, all zeros) drawn on the page."""
    rows = deflate_repeated(b"\x00" * side, side)
    image = flate_stream(
        rows,
        b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8" % (side, side),
    )
    content = TEXT + b"q 100 0 0 100 72 500 cm /Im1 Do Q\n"
    contents = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
    return write_pdf(path, contents, [image], b"/XObject << /Im1 6 0 R >>")


# --- measuring ----------------------------------------------------------------------------

MEASURE = """
import json, resource, sys, time
from pathlib import Path
from handbook.config import IndexSettings
from handbook.errors import LoaderError
from ingestion import isolation
from ingestion.loaders import load_document

limits = IndexSettings.model_validate_json(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    document = load_document(Path(sys.argv[1]), "doc", "sha", limits)
    error, text = None, " ".join(s.text for s in document.sections)[:10000]
except LoaderError as exc:
    error, text = str(exc), ""
seconds = time.perf_counter() - start
isolation.close()  # the reader process ends, so that its peak RSS is counted below
print(json.dumps({
    "error": error,
    "text": text,
    "seconds": seconds,
    "growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
    "child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


@dataclass(frozen=True)
class Measured:
    error: str | None
    text: str
    seconds: float
    growth_mb: float
    """Growth of the loading process's peak RSS (the indexer's share)."""
    child_mb: float
    """Peak RSS of the child process the file was read in (0 if read in-process)."""


def measure(path: Path, **limits: float) -> Measured:
    """load_document in a fresh process, with these `index` settings."""
    settings = IndexSettings.model_validate(limits)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), settings.model_dump_json()],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = Measured(**json.loads(done.stdout))
    print(f"{path.name} ({path.stat().st_size / 1024:.0f} KB): {result}")  # figures for the docs
    return result


def assert_bounded(result: Measured, memory_mb: int, seconds: float) -> None:
    assert result.growth_mb < 50, "the indexing process itself must not inflate the file"
    # The limit counts allocations; RSS adds the mapped libraries (about 40 MB).
    assert result.child_mb <= memory_mb + 64, "the child stays within index.reader_memory_mb"
    assert result.seconds < seconds


# --- decompression bombs ------------------------------------------------------------------


def test_docx_bomb_is_refused_by_its_declared_size(tmp_path: Path) -> None:
    bomb = docx_bomb(tmp_path / "bomb.docx", inflated_mb=1024)
    assert bomb.stat().st_size < 2 * MB
    result = measure(bomb)
    assert result.error is not None
    assert "MB, over the 256 MB limit" in result.error
    assert "raise index.max_unpacked_mb" in result.error
    assert_bounded(result, 1024, seconds=10)
    assert result.child_mb < 150, "refused from the ZIP directory, before inflating anything"


def test_docx_bomb_with_forged_sizes_fails_in_bounded_memory(tmp_path: Path) -> None:
    # The directory declares 20 KB; the member really inflates to 1 GB.
    bomb = docx_bomb(tmp_path / "forged.docx", inflated_mb=1024, declared=20_000)
    result = measure(bomb)
    assert result.error is not None and "damaged or forged" in result.error
    assert "save it again" in result.error
    assert_bounded(result, 1024, seconds=10)
    assert result.child_mb < 150, "zipfile stops at the declared size; nothing inflates to 1 GB"


def test_docx_with_too_many_members_is_refused(tmp_path: Path) -> None:
    parts = {name: deflated(data) for name, data in docx_parts().items()}
    empty = deflated(b"")
    padding = [(f"word/media/x{i}.bin", empty, 0) for i in range(MAX_ZIP_MEMBERS + 1)]
    path = write_zip(
        tmp_path / "crowded.docx", [(n, d, d.size) for n, d in parts.items()] + padding
    )
    result = measure(path)
    assert result.error is not None
    assert f"more than the {MAX_ZIP_MEMBERS} a document has" in result.error
    assert_bounded(result, 1024, seconds=10)


def test_a_genuine_docx_below_the_limits_is_read(tmp_path: Path) -> None:
    parts = docx_parts()
    path = write_zip(tmp_path / "fine.docx", [(n, deflated(d), len(d)) for n, d in parts.items()])
    result = measure(path)
    assert result.error is None and "47 Nm" in result.text


def test_docx_below_the_unpacked_limit_but_too_heavy_to_parse_fails_clearly(
    tmp_path: Path,
) -> None:
    # 100 MB of tiny paragraphs (under max_unpacked_mb) from a 330 KB file: lxml's tree of
    # them needs gigabytes.
    parts = docx_parts()
    head = parts["word/document.xml"].split(b"<w:body>")[0] + b"<w:body>"
    paragraph = b"<w:p><w:r><w:t>Zorblax 47 Nm</w:t></w:r></w:p>"
    body = deflate_repeated(
        paragraph * (MB // len(paragraph)), 100, prefix=head, suffix=b"</w:body></w:document>"
    )
    members = [
        (name, body, body.size) if name == "word/document.xml" else (name, deflated(d), len(d))
        for name, d in parts.items()
    ]
    path = write_zip(tmp_path / "paragraphs.docx", members)
    result = measure(path, reader_memory_mb=512)
    assert result.error is not None and "needs more than 512 MB of memory" in result.error
    assert_bounded(result, 512, seconds=30)


def test_pdf_bomb_fails_on_the_memory_limit(tmp_path: Path) -> None:
    # 2 GB of spaces in a FlateDecode content stream: in-process, PDFium took 3 GB for it.
    bomb = pdf_bomb(tmp_path / "bomb.pdf", inflated_mb=2048)
    assert bomb.stat().st_size < 3 * MB
    result = measure(bomb, reader_memory_mb=512)
    assert result.error is not None
    assert "needs more than 512 MB of memory" in result.error
    assert "raise index.reader_memory_mb" in result.error
    assert_bounded(result, 512, seconds=30)


def test_one_reader_process_reads_many_files_and_is_replaced_when_one_kills_it(
    tmp_path: Path,
) -> None:
    from ingestion.isolation import Limits, Reader

    good = SAMPLES / "werkstatthandbuch_kompakt-3.pdf"
    bomb = pdf_bomb(tmp_path / "bomb.pdf", inflated_mb=1024)
    reader = Reader(Limits(max_unpacked_mb=256, reader_memory_mb=384, read_timeout_s=60))
    try:
        first = reader.read(good)
        pid = reader.pid
        assert reader.read(good) == first and reader.pid == pid, "the child is reused"
        with pytest.raises(LoaderError, match="needs more than 384 MB of memory"):
            reader.read(bomb)  # retried once in a fresh child, then reported
        assert reader.read(good) == first and reader.pid not in (None, pid), "a new child"
    finally:
        reader.close()
    assert reader.pid is None


def test_pdf_operator_bomb_fails_on_the_memory_limit(tmp_path: Path) -> None:
    # 20 MB of `(A) Tj` from a 30 KB file: in-process, PDFium took 1.7 GB and 6 s for it.
    path = pdf_operators(tmp_path / "operators.pdf", b"(A) Tj\n", inflated_mb=20)
    assert path.stat().st_size < 100 * 1024
    result = measure(path, reader_memory_mb=512)
    assert result.error is not None and "needs more than 512 MB of memory" in result.error
    assert_bounded(result, 512, seconds=30)


def test_pdf_that_is_slow_to_parse_fails_on_the_time_limit(tmp_path: Path) -> None:
    # 1000 pages that all draw one stored 1 MB stream of tiny rectangles: a 150 KB file that
    # kept PDFium busy 0.16 s a page here (2.7 minutes) in flat memory.
    rectangles = b"0 0 1 1 re f\n" * (MB // 13)
    stream = flate_stream(deflate_repeated(rectangles, 1, prefix=TEXT))
    path = pdf_pages(tmp_path / "slow.pdf", 1000, stream)
    assert path.stat().st_size < 200 * 1024
    result = measure(path, read_timeout_s=2)
    assert result.error is not None
    assert "took longer than 2 s" in result.error and "index.read_timeout_s" in result.error
    assert_bounded(result, 1024, seconds=10)


def test_pdf_image_bomb_is_read_without_decoding_the_image(tmp_path: Path) -> None:
    # A 20000 x 20000 grey image (400 MB inflated): text extraction never decodes it.
    path = pdf_image_bomb(tmp_path / "image.pdf", side=20_000)
    result = measure(path)
    assert result.error is None and "47 Nm" in result.text
    assert_bounded(result, 1024, seconds=20)
    assert result.child_mb < 200


# --- structure and size -------------------------------------------------------------------


def test_deeply_nested_html_is_read(tmp_path: Path) -> None:
    depth = 100_000
    path = tmp_path / "deep.html"
    path.write_text(
        "<html><body>"
        + "<div>" * depth
        + "<p>Zorblax flange bolt: 47 Nm.</p>"
        + "</div>" * depth
        + "</body></html>",
        encoding="utf-8",
    )
    result = measure(path)
    assert result.error is None, result.error
    assert "Zorblax flange bolt: 47 Nm." in result.text
    assert_bounded(result, 1024, seconds=60)


def test_html_nested_beyond_the_memory_limit_fails_clearly(tmp_path: Path) -> None:
    depth = 1_000_000
    path = tmp_path / "deeper.html"
    path.write_text("<div>" * depth + "x" + "</div>" * depth, encoding="utf-8")
    result = measure(path, reader_memory_mb=256)
    assert result.error is not None
    assert "needs more than 256 MB of memory" in result.error
    assert_bounded(result, 256, seconds=60)


def unique_words(megabytes: int) -> str:
    """One line of distinct words (no two chunks alike, so none is deduplicated)."""
    words: list[str] = []
    size = i = 0
    while size < megabytes * MB:
        word = f"w{i:x}"
        words.append(word)
        size += len(word) + 1
        i += 1
    return " ".join(words)


def chunked(path: Path, settings: ChunkingSettings) -> tuple[list[str], float]:
    start = time.perf_counter()
    document = load_document(path, "doc", "sha", IndexSettings())
    chunks = [c.text for c in chunk_document(document, settings)]
    return chunks, time.perf_counter() - start


@pytest.mark.slow  # 15 s each
@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_gigantic_single_line_is_chunked_in_linear_time(tmp_path: Path, suffix: str) -> None:
    settings = ChunkingSettings()
    line = unique_words(20)
    big, small = tmp_path / f"big{suffix}", tmp_path / f"small{suffix}"
    big.write_text(line, encoding="utf-8")
    small.write_text(line[: len(line) // 10].rsplit(" ", 1)[0], encoding="utf-8")
    chunks, seconds = chunked(big, settings)
    _, small_seconds = chunked(small, settings)
    print(f"{suffix}: 20 MB line {seconds:.1f} s, 2 MB line {small_seconds:.1f} s")
    assert len(chunks) > 20 * MB // (settings.max_tokens * MAX_TOKEN_CHARS)
    assert max(count_tokens(c) for c in chunks) <= settings.max_tokens
    assert max(len(c) for c in chunks) <= settings.max_tokens * MAX_TOKEN_CHARS
    assert " ".join(chunks[-1].split()[-2:]) == " ".join(line.split()[-2:]), "nothing lost"
    # Linear: ten times the text takes about ten times as long (quadratic would be 100).
    assert seconds < 30 * small_seconds + 2


def test_gigantic_word_is_cut_into_bounded_chunks() -> None:
    settings = ChunkingSettings()
    text = "Zorblax " + "".join(f"{i:08x}" for i in range(MB // 8)) + " 47 Nm"  # 1 MB, no space
    start = time.perf_counter()
    chunks = split_section(text, settings)
    seconds = time.perf_counter() - start
    assert max(len(c) for c in chunks) <= settings.max_tokens * MAX_TOKEN_CHARS
    assert len(chunks) >= MB // (settings.max_tokens * MAX_TOKEN_CHARS)
    assert "".join("".join(chunks).split()) == "".join(text.split()), "nothing lost or added"
    assert seconds < 10


def test_heading_pattern_on_a_gigantic_line_is_not_quadratic(tmp_path: Path) -> None:
    # "# ##...#x": the ATX heading pattern backtracked quadratically (40 000 characters took
    # 34 s); a 1 MB line would have taken hours.
    path = tmp_path / "hashes.txt"
    path.write_text("Zorblax flange bolt: 47 Nm.\n# " + "#" * MB + "x\n", encoding="utf-8")
    result = measure(path)
    assert result.error is None and "47 Nm" in result.text
    assert_bounded(result, 1024, seconds=20)


def test_markdown_that_is_slow_to_parse_fails_on_the_time_limit(tmp_path: Path) -> None:
    # markdown-it is quadratic on a line of "[": 1 MB took 18 s here, 2 MB 68 s.
    path = tmp_path / "brackets.md"
    path.write_text("# Zorblax\n\n" + "[" * (4 * MB), encoding="utf-8")
    result = measure(path, read_timeout_s=3)
    assert result.error is not None and "took longer than 3 s" in result.error
    assert_bounded(result, 1024, seconds=10)


# --- in the index: nothing stored is lost --------------------------------------------------


def index(settings: Settings, path: Path) -> IndexReport:
    async def work() -> IndexReport:
        async with Handbook(settings) as hb:
            return await (await hb.indexer()).index(path)

    return asyncio.run(work())


def stored(settings: Settings) -> tuple[int, dict[str, tuple[str, int]], list[list[str]]]:
    """Vectors in the store, (hash, chunks) per registered file, and what two searches find."""

    async def work() -> tuple[int, dict[str, tuple[str, int]], list[list[str]]]:
        async with Handbook(settings) as hb:
            store = await hb.store()
            rows = {Path(r.path).name: (r.sha256, r.chunks) for r in hb.registry.all()}
            retriever = await hb.retriever()
            found = []
            for question in ("Zorblax flange bolt torque", "Which oil does the Quennic pump take?"):
                result = await retriever.search(question, k=1)
                found.append([Path(p.chunk.path).name for p in result.passages])
            return await store.count(), rows, found

    return asyncio.run(work())


@pytest.mark.slow  # 25 s: indexes with the real embedder
def test_hostile_files_fail_alone_and_nothing_stored_is_lost(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = tmp_path / "manuals"
    corpus.mkdir()
    (corpus / "zorblax.md").write_text(
        "# Zorblax pump\n\n## Torque\n\nThe Zorblax flange bolt takes 47 Nm.\n", encoding="utf-8"
    )
    pump = docx_parts("The Quennic pump takes Velmor HX-9 oil.")
    write_zip(corpus / "quennic.docx", [(n, deflated(d), len(d)) for n, d in pump.items()])
    first = index(settings, corpus)
    assert first.count(Status.INDEXED) == 2 and not first.failed, first.failed
    before = stored(settings)
    assert before[2] == [["zorblax.md"], ["quennic.docx"]]

    # Hostile files arrive, and an indexed document is overwritten by a zip bomb.
    docx_bomb(corpus / "quennic.docx", inflated_mb=1024)
    docx_bomb(corpus / "forged.docx", inflated_mb=1024, declared=20_000)
    pdf_bomb(corpus / "bomb.pdf", inflated_mb=2048)
    pdf_operators(corpus / "operators.pdf", b"(A) Tj\n", inflated_mb=20)
    (corpus / "brackets.md").write_text("[" * (4 * MB), encoding="utf-8")
    limited = make_settings(settings.home, INDEX__READER_MEMORY_MB="512", INDEX__READ_TIMEOUT_S="3")
    started = time.perf_counter()
    report = index(limited, corpus)
    seconds = time.perf_counter() - started

    reasons = {Path(o.path).name: o.reason for o in report.failed}
    print(f"hostile corpus indexed in {seconds:.1f} s: {reasons}")
    assert set(reasons) == {
        "quennic.docx",
        "forged.docx",
        "bomb.pdf",
        "operators.pdf",
        "brackets.md",
    }
    assert all("raise index." in r or "save it again" in r for r in reasons.values()), reasons
    assert report.count(Status.UNCHANGED) == 1
    assert stored(settings) == before, "the bombed document keeps its chunks; nothing else moved"
    assert seconds < 60
