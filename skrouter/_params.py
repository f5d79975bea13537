"""Checks of estimator and function parameters shared across subpackages."""

import numbers


def check_integer(name, value, low):
    """Raise ValueError unless ``value`` is an integer >= ``low``.

    A bool is rejected although Python counts it as an integer, so that
    ``n_neighbors=True`` is an error and not one neighbor.
    """
    if (
        not isinstance(value, numbers.Integral)
        or isinstance(value, bool)
        or value < low
    ):
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
