"""The one tie-breaking rule of every routing decision."""

import numpy as np


def _first_best(primary, secondary):
    """Per row, the column with the highest ``primary``, then ``secondary``.

    Remaining ties go to the earlier column. Routers call it with the utility
    and the negated predicted cost, curves with predicted quality and cost, so
    that a router's choices and the curve of its predictions always agree.
    """
    best = primary.max(axis=1, keepdims=True)
    candidates = primary == best
    secondary = np.where(candidates, secondary, -np.inf)
    best_secondary = secondary.max(axis=1, keepdims=True)
    candidates &= secondary == best_secondary
    return candidates.argmax(axis=1)
