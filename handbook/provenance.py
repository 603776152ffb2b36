"""Where an artifact comes from: the git revision of the code that made it (recorded in adapter
checkpoints and benchmark runs)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_revision() -> str | None:
    """The commit this code is checked out at, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return result.stdout.strip() or None
