"""Where the loaders find their data, and small readers they share."""

import os
from pathlib import Path

EMBEDDED_DATA_DIR = Path(__file__).resolve().parent / "data"
DATA_HOME_ENV = "SKROUTER_DATA"


def get_data_home(data_home=None):
    """Return the folder that the loaders read.

    The folder is, in this order: ``data_home`` when given, else the
    environment variable ``SKROUTER_DATA`` when set and not empty, else the
    copy shipped inside the package. Nothing is downloaded.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that contains the upstream data sets, one subfolder each
        (``math-vision/``, ``mathvista/``, ``routerbench-subset/``).

    Returns
    -------
    data_home : pathlib.Path
        The absolute path of the folder.

    Raises
    ------
    TypeError
        If ``data_home`` is not a string or path-like object.
    FileNotFoundError
        If the folder chosen does not exist.

    Examples
    --------
    >>> from skrouter.datasets import get_data_home
    >>> get_data_home().name
    'data'
    """
    path, _ = _resolve_data_home(data_home)
    return path


def _resolve_data_home(data_home):
    """Return the data folder and whether it is the copy inside the package."""
    if data_home is None:
        from_env = os.environ.get(DATA_HOME_ENV, "")
        if not from_env:
            return EMBEDDED_DATA_DIR, True
        path = Path(from_env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"The environment variable {DATA_HOME_ENV}={from_env!r} names a "
                "folder that does not exist. Set it to the folder that contains the "
                "data sets, or unset it to use the copy shipped in the package."
            )
        return path.resolve(), False

    if not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(
            "data_home must be a str or path-like object naming a folder, or None; "
            f"got {type(data_home).__name__}."
        )
    path = Path(data_home).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"data_home={str(data_home)!r} is not an existing folder. Pass the "
            "folder that contains the data sets (math-vision/, mathvista/, "
            "routerbench-subset/), or None."
        )
    return path.resolve(), False


def _dataset_dir(data_home, name):
    """Return ``data_home / name``, raising a clear error when it is missing."""
    path = data_home / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"The data folder {str(data_home)!r} has no {name!r} subfolder. Pass "
            f"as data_home (or set {DATA_HOME_ENV} to) the folder that contains "
            f"{name}/."
        )
    return path


def _check_choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; got {value!r}.")
    return value
