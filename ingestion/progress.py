"""What the indexing pipeline reports while it works (no-ops here; the CLI draws bars)."""


class Progress:
    def files(self, total: int) -> None:
        """The number of files that will be looked at."""

    def file_done(self, path: str) -> None:
        """One file finished (indexed, skipped or failed)."""

    def chunks_planned(self, count: int) -> None:
        """This many more chunks will be embedded."""

    def chunks_done(self, count: int) -> None:
        """This many chunks were embedded and stored."""

    def pages_read(self, path: str, done: int, total: int) -> None:
        """OCR has read `done` of the `total` scanned pages of `path` (called from a thread)."""
