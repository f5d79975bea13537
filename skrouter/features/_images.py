"""Read the image cells of a query table into bounded-size RGB images.

Every featurizer that looks at images reads its cells through this module, so
that all of them accept the same kinds of cell, convert colour modes the same
way and report unreadable images with the same error:

- a path (``str`` or ``os.PathLike``), relative ones resolved against
  ``image_root``;
- a ``PIL.Image.Image``;
- encoded bytes (``bytes``, ``bytearray`` or ``memoryview``);
- a mapping with a ``"bytes"`` or ``"path"`` entry, as Hugging Face
  ``datasets`` stores images;
- a missing value (``None``, ``NaN``, ``pd.NA`` or ``""``).

Large files are decoded at reduced size where the format allows it (JPEG
draft mode) and then shrunk so that the longer side is at most ``max_side``
pixels, so a poster-sized scan costs about as much memory as a thumbnail.
"""

import hashlib
import io
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_MAX_SIDE",
    "MAX_IMAGE_PIXELS",
    "ImageReadError",
    "cell_digest",
    "image_digest",
    "is_missing",
    "iter_image_batches",
    "load_image",
    "read_image_source",
]

# Maximum length, in pixels, of the longer side kept after decoding. CLIP-style
# models take 224 to 448 pixel inputs, and image statistics barely change
# below this size.
DEFAULT_MAX_SIDE = 1024

# Images with more pixels than this are rejected before decoding. A full
# decode of the largest accepted PNG takes about 0.5 GB as RGB. Pillow's own
# limit (``Image.MAX_IMAGE_PIXELS``, 89.5 million pixels in Pillow 13) only
# warns up to twice its value, and this module silences that warning because it
# downsizes every image right after decoding.
MAX_IMAGE_PIXELS = 128 * 2**20


class ImageReadError(ValueError):
    """Raised when an image cell cannot be read or decoded.

    The message names the row and, for files, the path. Featurizers that take
    ``on_image_error="missing"`` catch it and treat the image as missing.
    """


def is_missing(cell):
    """Return True when a cell is a missing value.

    ``None``, float NaN, ``pd.NA``/``pd.NaT`` and the empty string are missing.
    """
    if cell is None:
        return True
    if isinstance(cell, str):
        return cell == ""
    if isinstance(cell, (float, np.floating)):
        return bool(np.isnan(cell))

    # pd.NA and pd.NaT without importing pandas here.
    type_name = type(cell).__name__
    return type_name in ("NAType", "NaTType")


def _resolve_path(path, image_root):
    path = Path(os.fspath(path)).expanduser()
    if not path.is_absolute() and image_root is not None:
        path = Path(image_root).expanduser() / path
    return path


def read_image_source(cell, image_root=None, row=None):
    """Return the encoded bytes of an image cell, or the image itself.

    Parameters
    ----------
    cell : object
        One image cell (see the module docstring for the accepted kinds).
    image_root : str or path-like, default=None
        Folder that relative paths are resolved against.
    row : object, default=None
        Row label used in error messages.

    Returns
    -------
    source : bytes, PIL.Image.Image or None
        The file content for paths, bytes and mappings, the image for a
        ``PIL.Image.Image``, and None for a missing cell.
    path : pathlib.Path or None
        The resolved file path, when the cell names a file.

    Raises
    ------
    ImageReadError
        If the file does not exist or cannot be read, or the cell is of an
        unsupported type.
    """
    from PIL import Image

    if is_missing(cell):
        return None, None
    if isinstance(cell, Image.Image):
        return cell, None
    if isinstance(cell, (bytes, bytearray, memoryview)):
        return bytes(cell), None
    if isinstance(cell, Mapping):
        if cell.get("bytes") is not None:
            return bytes(cell["bytes"]), None
        if not is_missing(cell.get("path")):
            return read_image_source(cell["path"], image_root, row)
        return None, None

    if isinstance(cell, (str, os.PathLike)):
        path = _resolve_path(cell, image_root)
        try:
            return path.read_bytes(), path
        except OSError as exc:
            raise ImageReadError(
                f"Could not read the image file of row {row!r} at '{path}': "
                f"{exc.strerror or exc}."
            ) from exc

    raise ImageReadError(
        f"Invalid image cell in row {row!r}: got {type(cell).__name__}, "
        "expected a path, a PIL.Image.Image, encoded bytes or a missing value."
    )


def image_digest(source):
    """Return the SHA-256 hex digest of an image source, or None if missing.

    Encoded bytes are hashed as they are. A ``PIL.Image.Image`` is hashed from
    its mode, size and pixel data, so two equal in-memory images share a digest
    but an image and the file it was read from do not.
    """
    if source is None:
        return None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return hashlib.sha256(source).hexdigest()

    hasher = hashlib.sha256()
    hasher.update(f"{source.mode}:{source.size[0]}x{source.size[1]}:".encode())
    hasher.update(source.tobytes())
    return hasher.hexdigest()


# Digests of image files already hashed in this process, keyed by the file's
# path, size and modification time: a grid search transforms the same files
# hundreds of times, and rereading them dominated its cost. A file rewritten
# in place within the clock's resolution and at the same size is missed.
_FILE_DIGESTS = {}
_FILE_DIGESTS_LOCK = threading.Lock()
_MAX_FILE_DIGESTS = 1_000_000


def cell_digest(cell, image_root=None, row=None):
    """Return the SHA-256 hex digest of an image cell, or None if missing.

    Files are hashed from their bytes once per process and remembered by
    path, size and modification time; other cells are hashed as
    :func:`image_digest` does.

    Raises
    ------
    ImageReadError
        As :func:`read_image_source`.
    """
    if isinstance(cell, (str, os.PathLike)) and not is_missing(cell):
        # String operations, not pathlib: this runs for every image of every
        # transform, and building Path objects cost more than the lookup.
        path = os.fspath(cell)
        if path.startswith("~"):
            path = os.path.expanduser(path)
        if image_root is not None and not os.path.isabs(path):
            path = os.path.join(os.path.expanduser(os.fspath(image_root)), path)
        try:
            status = os.stat(path)
        except OSError as exc:
            raise ImageReadError(
                f"Could not read the image file of row {row!r} at '{path}': "
                f"{exc.strerror or exc}."
            ) from exc

        # A dict read is atomic, so only writers take the lock.
        identity = (path, status.st_size, status.st_mtime_ns)
        digest = _FILE_DIGESTS.get(identity)
        if digest is None:
            source, _ = read_image_source(path, None, row)
            digest = image_digest(source)
            with _FILE_DIGESTS_LOCK:
                if len(_FILE_DIGESTS) >= _MAX_FILE_DIGESTS:
                    _FILE_DIGESTS.clear()
                _FILE_DIGESTS[identity] = digest
        return digest

    source, _ = read_image_source(cell, image_root, row)
    return image_digest(source)


def _to_uint8(array):
    """Scale a 16-bit or float grayscale array to 0..255."""
    array = np.asarray(array)
    if array.dtype.kind == "f":
        # Float images are either in [0, 1] or already in [0, 255].
        scale = 255.0 if np.nanmax(array, initial=0.0) <= 1.0 else 1.0
        array = np.nan_to_num(array * scale)
    elif array.max(initial=0) > 255:
        # 16-bit data: map 0..65535 onto 0..255.
        array = array / 257.0
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def _to_rgb(image):
    """Convert any Pillow mode to RGB, compositing transparency onto white."""
    from PIL import Image

    if image.mode == "RGB":
        return image

    # Pillow's own conversion of 16-bit and 32-bit modes to 8 bits clips at
    # 255 instead of scaling, which turns most of a 16-bit image white.
    if image.mode.startswith("I") or image.mode == "F":
        image = Image.fromarray(_to_uint8(image), mode="L")

    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBa", "La", "LA", "PA"):
        image = image.convert("RGBA")

    # Transparent diagrams are usually dark strokes on a transparent
    # background, so dropping alpha would turn them black on black.
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")

    return image.convert("RGB")


def _decode(source, max_side):
    from PIL import Image, ImageOps

    if isinstance(source, Image.Image):
        image = source
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source))

        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError(
                f"image has {width}x{height} = {width * height} pixels, more "
                f"than the limit of {MAX_IMAGE_PIXELS}"
            )

        # JPEG decodes at 1/2, 1/4 or 1/8 scale for almost no cost, and
        # draft() keeps the result at least as large as requested.
        if image.format == "JPEG":
            image.draft("RGB", (max_side, max_side))

    # exif_transpose returns a copy, so the caller's image is never changed.
    image = ImageOps.exif_transpose(image)
    image = _to_rgb(image)
    if max(image.size) > max_side:
        if image is source:
            image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    return image


def load_image(
    cell, image_root=None, row=None, *, max_side=DEFAULT_MAX_SIDE, source=None
):
    """Read one image cell into an RGB ``PIL.Image.Image``.

    Palette, grayscale, 16-bit, CMYK and transparent images are converted to
    RGB (transparent pixels become white), the EXIF orientation is applied,
    and the image is shrunk to at most ``max_side`` pixels on its longer side.

    Parameters
    ----------
    cell : object
        One image cell: a path, a ``PIL.Image.Image``, encoded bytes, a
        mapping with ``"bytes"`` or ``"path"``, or a missing value.
    image_root : str or path-like, default=None
        Folder that relative paths are resolved against.
    row : object, default=None
        Row label used in error messages.
    max_side : int, default=DEFAULT_MAX_SIDE
        Maximum length, in pixels, of the longer side of the returned image.
    source : bytes or PIL.Image.Image, default=None
        What :func:`read_image_source` already returned for this cell, so that
        a caller that hashed the file does not read it twice.

    Returns
    -------
    image : PIL.Image.Image or None
        An RGB image, or None when the cell is missing.

    Raises
    ------
    ImageReadError
        If the file is missing or unreadable, the data is not a decodable
        image, or the image has more than ``MAX_IMAGE_PIXELS`` pixels.

    Examples
    --------
    >>> from PIL import Image
    >>> from skrouter.features._images import load_image
    >>> image = load_image(Image.new("LA", (4000, 1000)), max_side=512)
    >>> image.mode, image.size
    ('RGB', (512, 128))
    >>> load_image(None) is None
    True
    """
    path = None
    if source is None:
        source, path = read_image_source(cell, image_root, row)
        if source is None:
            return None
    elif isinstance(cell, (str, os.PathLike)):
        path = _resolve_path(cell, image_root)

    from PIL import Image, UnidentifiedImageError

    try:
        return _decode(source, max_side)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        where = f" at '{path}'" if path is not None else ""
        if isinstance(exc, UnidentifiedImageError):
            reason = "the data is not in an image format that Pillow recognizes"
        else:
            reason = str(exc).rstrip(".")
        raise ImageReadError(
            f"Could not decode the image of row {row!r}{where}: {reason}."
        ) from exc


def iter_image_batches(
    cells: Sequence,
    batch_size,
    *,
    image_root=None,
    rows=None,
    max_side=DEFAULT_MAX_SIDE,
    on_error="raise",
) -> Iterator[tuple[np.ndarray, list]]:
    """Yield the images of ``cells`` in batches of ``batch_size``.

    Parameters
    ----------
    cells : sequence
        Image cells, for example one column of a DataFrame as a list.
    batch_size : int
        Number of cells per batch (the last batch may be shorter).
    image_root : str or path-like, default=None
        Folder that relative paths are resolved against.
    rows : sequence, default=None
        Row labels used in error messages, one per cell. Defaults to the
        positions ``0 .. len(cells) - 1``.
    max_side : int, default=DEFAULT_MAX_SIDE
        Maximum length, in pixels, of the longer side of the returned images.
    on_error : {"raise", "missing"}, default="raise"
        What to do with an unreadable image: raise :class:`ImageReadError`, or
        return None for it as for a missing cell.

    Yields
    ------
    positions : ndarray of int
        Positions in ``cells`` of this batch.
    images : list of PIL.Image.Image or None
        The RGB images, None where the cell is missing (or unreadable, with
        ``on_error="missing"``).
    """
    if on_error not in ("raise", "missing"):
        raise ValueError(
            f"Invalid on_error={on_error!r}; expected 'raise' or 'missing'."
        )
    if rows is None:
        rows = range(len(cells))

    for start in range(0, len(cells), batch_size):
        positions = np.arange(start, min(start + batch_size, len(cells)))
        images = []
        for position in positions:
            try:
                image = load_image(
                    cells[position], image_root, rows[position], max_side=max_side
                )
            except ImageReadError:
                if on_error == "raise":
                    raise
                image = None
            images.append(image)
        yield positions, images
