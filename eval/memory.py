"""Memory of this process while a model runs: resident memory now, its peak sampled in a
thread, and CUDA's peak (the chat benchmark and model selection record them)."""

from __future__ import annotations

import threading
from pathlib import Path


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc; 0 where it is not there)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakMemory:
    """Samples RSS on a thread while the block runs; `peak` is the largest sample."""

    def __init__(self, every: float = 0.1) -> None:
        self.peak = rss_mb()
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def cuda_peak_mb() -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return float(torch.cuda.max_memory_allocated()) / 2**20
