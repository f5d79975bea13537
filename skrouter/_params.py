"""Parameter checks and warnings shared across subpackages."""

import numbers
import os
import sys
import warnings


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


# Files whose frames a warning skips, so that it points at the line of the
# caller's own code: skrouter itself, and the scikit-learn and joblib code
# (Pipeline, GridSearchCV, Parallel) that calls skrouter on the caller's
# behalf.
def _library_folders():
    import joblib
    import sklearn

    return tuple(
        os.path.dirname(os.path.abspath(module.__file__)) + os.sep
        for module in (sys.modules[__package__], sklearn, joblib)
    )


def warn(message, category=UserWarning):
    """Issue a warning attributed to the first frame outside the libraries.

    With a fixed ``stacklevel``, a warning raised three calls deep inside a
    pipeline pointed at a line of skrouter or scikit-learn. The location also
    keys the default filter that shows a warning once per place.
    """
    folders = _library_folders()
    frame = sys._getframe(1)
    level = 2
    # In a worker process every frame is a library's: keep the outermost.
    while frame.f_back is not None and frame.f_code.co_filename.startswith(folders):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
