"""The one tie-breaking rule of every routing decision."""

import numpy as np


def _first_best(primary, secondary):
    """Per row, the column with the highest ``primary``, then ``secondary``.

    Remaining ties go to the earlier column. Routers call it with the utility
    and the negated predicted cost, curves with predicted quality and cost, so
    that a router's choices and the curve of its predictions always agree.
    """
    rows = np.arange(primary.shape[0])
    first = primary.argmax(axis=1)

    # Most rows have a single best column; settle the tied ones separately.
    best = primary[rows, first][:, None]
    tied_rows = np.flatnonzero((primary == best).sum(axis=1) > 1)
    if tied_rows.size == 0:
        return first

    candidates = primary[tied_rows] == best[tied_rows]
    tied_secondary = np.where(candidates, secondary[tied_rows], -np.inf)
    candidates &= tied_secondary == tied_secondary.max(axis=1, keepdims=True)
    first[tied_rows] = candidates.argmax(axis=1)
    return first
