"""The development set's manuals: pinned Debian documentation packages, fetched and cut down.

Handbook's answer quality is measured on real manuals that the project does not ship
(eval/questions/devset.jsonl, described in eval/questions/DEVSET.md). This module downloads the
pinned packages with `apt-get download`, checks each .deb against its pinned SHA-256, and copies
only the chosen manual files into `<cache>/manuals/` under stable names. A second call with
every manual present does nothing.

    python -m eval.devset [--cache DIR]     # prints the manuals folder
"""

from __future__ import annotations

import argparse
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from handbook.errors import HandbookError
from ingestion.pipeline import file_sha256

AR_MAGIC = b"!<arch>\n"
AR_HEADER_SIZE = 60


class DevsetError(HandbookError):
    """The development set could not be fetched or checked."""


@dataclass(frozen=True)
class Package:
    """A Debian package pinned by version and by the SHA-256 of its .deb file."""

    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class Manual:
    """One file taken from a package: its path inside the package and its name in manuals/."""

    package: str
    member: str
    name: str


PACKAGES: tuple[Package, ...] = (
    Package(
        "debian-reference-de",
        "2.100",
        "3b0ce65fd63e75ddf8eb07ca36293425135080e690a07e06a6ac8bc8040ef0aa",
    ),
    Package(
        "debian-reference-en",
        "2.100",
        "9f31d3a17df505de09689ca255512ea58c1fc47c59bb1b0c7bf1c23362e9743f",
    ),
    Package(
        "debian-handbook",
        "11.20220922",
        "3d5dbeac1f1afc9c094eab9d0f701f6ecff99c4927d5a4794cf6c85678134faa",
    ),
    Package(
        "gnuplot-doc",
        "5.4.4+dfsg1-2",
        "73fe1816a296594cf6a1d38528f8d740fd650f57a2cb62e029f7920fcd5b31f0",
    ),
)

_REFERENCE = "usr/share/debian-reference"
_HANDBOOK = "usr/share/doc/debian-handbook/html"

MANUALS: tuple[Manual, ...] = (
    # Debian Reference, chapter 2 (package management) in both languages: cross-lingual pairs.
    Manual("debian-reference-de", f"{_REFERENCE}/ch02.de.html", "debian-reference-de_ch02.html"),
    Manual("debian-reference-en", f"{_REFERENCE}/ch02.en.html", "debian-reference-en_ch02.html"),
    # Chapter 3 (system initialisation) in German only: English questions about it cross over.
    Manual("debian-reference-de", f"{_REFERENCE}/ch03.de.html", "debian-reference-de_ch03.html"),
    # The Debian Administrator's Handbook: one HTML file per section (Publican output).
    Manual(
        "debian-handbook",
        f"{_HANDBOOK}/en-US/sect.remote-login.html",
        "debian-handbook-en_remote-login.html",
    ),
    Manual(
        "debian-handbook",
        f"{_HANDBOOK}/en-US/sect.firewall-packet-filtering.html",
        "debian-handbook-en_firewall-packet-filtering.html",
    ),
    Manual(
        "debian-handbook",
        f"{_HANDBOOK}/de-DE/sect.task-scheduling-cron-atd.html",
        "debian-handbook-de_task-scheduling-cron-atd.html",
    ),
    # The gnuplot 5.4 manual: a 311-page pdfLaTeX PDF.
    Manual("gnuplot-doc", "usr/share/doc/gnuplot/gnuplot.pdf", "gnuplot.pdf"),
)


def default_cache() -> Path:
    """The default cache folder, `~/.cache/handbook-devset`."""
    return Path.home() / ".cache" / "handbook-devset"


def fetch(cache: Path) -> Path:
    """Make sure every manual is in `<cache>/manuals/` and return that folder.

    Packages are downloaded (kept in `<cache>/debs/`) and verified only when one of their
    manuals is missing; manuals are written atomically, so an interrupted run leaves no
    half-written file behind.
    """
    manuals = cache / "manuals"
    for package in PACKAGES:
        wanted = [m for m in MANUALS if m.package == package.name]
        missing = [m for m in wanted if not (manuals / m.name).is_file()]
        if not missing:
            continue
        deb = _deb(package, cache / "debs")
        contents = extract(deb, [m.member for m in missing])
        manuals.mkdir(parents=True, exist_ok=True)
        for manual in missing:
            _write_atomic(manuals / manual.name, contents[manual.member], cache)
    return manuals


def _deb(package: Package, debs: Path) -> Path:
    """The verified .deb of `package`, downloaded into `debs` unless a verified copy is there."""
    target = debs / f"{package.name}_{package.version}.deb"
    if target.is_file():
        verify(target, package)
        return target
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=debs) as tmp:
        downloaded = download(package, Path(tmp))
        verify(downloaded, package)
        downloaded.replace(target)
    return target


def download(package: Package, folder: Path) -> Path:
    """Download `package` at its pinned version with `apt-get download` into `folder`."""
    spec = f"{package.name}={package.version}"
    try:
        done = subprocess.run(
            ["apt-get", "download", spec],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise DevsetError(
            f"apt-get is not installed: fetch {spec} on a Debian or Ubuntu machine "
            "(Debian 12 'bookworm' sources) and copy the cache folder here"
        ) from None
    if done.returncode != 0:
        raise DevsetError(
            f"apt-get download {spec} failed: {done.stderr.strip() or done.stdout.strip()}; "
            "run 'apt-get update' and check that Debian 12 ('bookworm') sources are configured"
        )
    debs = sorted(folder.glob(f"{package.name}_*.deb"))
    if len(debs) != 1:
        raise DevsetError(f"apt-get download {spec} left {len(debs)} .deb files in {folder}")
    return debs[0]


def verify(deb: Path, package: Package) -> None:
    """Raise DevsetError unless the SHA-256 of `deb` is the one pinned for `package`."""
    actual = file_sha256(deb)
    if actual != package.sha256:
        raise DevsetError(
            f"{package.name} {package.version}: {deb.name} has SHA-256 {actual}, "
            f"expected {package.sha256}; delete {deb} and fetch again, or update the pin "
            "in eval/devset.py (and the questions) if the package really changed"
        )


def extract(deb: Path, members: Sequence[str]) -> dict[str, bytes]:
    """The contents of the regular files `members` (paths without "./") inside a .deb."""
    with _data_tar(deb) as tar:
        found: dict[str, bytes] = {}
        for info in tar:
            name = info.name.removeprefix("./")
            if name not in members or not info.isfile():
                continue
            handle = tar.extractfile(info)
            if handle is not None:
                found[name] = handle.read()
    missing = [m for m in members if m not in found]
    if missing:
        raise DevsetError(f"{deb.name} holds no regular file {', '.join(missing)}")
    return found


def _data_tar(deb: Path) -> tarfile.TarFile:
    """The data archive of a .deb (an `ar` archive) as an open TarFile.

    Python reads gzip, xz and bzip2 data archives itself; for any other compression (zstd
    before Python 3.14) `dpkg-deb --fsys-tarfile` decompresses it.
    """
    name, data = _ar_member(deb, "data.tar")
    modes: dict[str, Literal["r:", "r:gz", "r:xz", "r:bz2"]] = {
        "data.tar": "r:",
        "data.tar.gz": "r:gz",
        "data.tar.xz": "r:xz",
        "data.tar.bz2": "r:bz2",
    }
    if name in modes:
        return tarfile.open(fileobj=io.BytesIO(data), mode=modes[name])
    try:
        done = subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=False
        )
    except FileNotFoundError:
        raise DevsetError(
            f"{deb.name} holds {name}, which this Python cannot read; install dpkg "
            "(dpkg-deb) or use Python 3.14+"
        ) from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise DevsetError(f"dpkg-deb could not unpack {deb.name}: {message}")
    return tarfile.open(fileobj=io.BytesIO(done.stdout), mode="r:")


def _ar_member(path: Path, prefix: str) -> tuple[str, bytes]:
    """(name, content) of the first member of the ar archive `path` whose name starts so."""
    with path.open("rb") as fh:
        if fh.read(len(AR_MAGIC)) != AR_MAGIC:
            raise DevsetError(f"{path.name} is not a Debian package (no ar header)")
        while header := fh.read(AR_HEADER_SIZE):
            if len(header) < AR_HEADER_SIZE or header[58:60] != b"`\n":
                raise DevsetError(f"{path.name} is truncated or not a Debian package")
            name = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            if name.startswith(prefix):
                return name, fh.read(size)
            fh.seek(size + size % 2, io.SEEK_CUR)  # members are padded to an even length
    raise DevsetError(f"{path.name} has no {prefix}* member")


def _write_atomic(target: Path, data: bytes, scratch: Path) -> None:
    """Write `data` to `target` through a temporary file in `scratch` (same file system).

    The temporary file is kept out of the manuals folder, so that indexing that folder never
    meets a half-written file.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    partial = scratch / f".{target.name}.part"
    partial.write_bytes(data)
    partial.replace(target)


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch the development set's manuals and print their folder."""
    parser = argparse.ArgumentParser(
        prog="python -m eval.devset",
        description="Fetch the development set's manuals (pinned Debian packages).",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=default_cache(),
        help="cache folder (default: ~/.cache/handbook-devset)",
    )
    args = parser.parse_args(argv)
    try:
        folder = fetch(args.cache)
    except HandbookError as exc:
        parser.exit(1, f"error: {exc}\n")
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
