"""Pearson r as every analyzability number uses it: NaN where it would not mean anything."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson r of x and y; NaN with fewer than 3 pairs or a constant side.

    float64 and a range test rather than std == 0: a float32 column that is constant up to
    rounding has a tiny non-zero std, and np.corrcoef then divides 0 by 0.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])
