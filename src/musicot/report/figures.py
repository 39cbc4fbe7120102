"""What every figure of the run shares: one layout and the same files (pdf + png) for each."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure


def save_figure(fig: Figure, paths: Sequence[Path]) -> None:
    """Lay `fig` out and write it to every path (pdf, png, ...), making their folders."""
    fig.tight_layout()
    for path in paths:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
