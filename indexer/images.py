"""Image files in, RGB arrays out, within a process-wide pixel budget.

`load_image` decodes (EXIF orientation applied, at most `MAX_PIXELS`); `DECODE_BUDGET` bounds
the pixels decoded at once across threads (a server decoding several large photos), and freed
decode buffers go back to the OS (`malloc_trim`).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from kb.errors import InputError



MAX_PIXELS = 50_000_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
DECODE_BUDGET_PIXELS = 100_000_000  # two images at the limit; ~3-6 bytes per pixel while decoded


# Every open is followed by our own MAX_PIXELS check (below Pillow's warning threshold), so
# Pillow's DecompressionBombWarning only repeats it, on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)



@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """The image file opened by Pillow (header read, pixels not decoded), its size checked;
    every failure, including one while decoding inside the block, becomes `InputError`."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise InputError(f"{path}: image of {w}x{h} is over the {MAX_PIXELS // 1_000_000} megapixel limit")
            yield img
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise InputError(f"{path}: unreadable or corrupt image ({exc})") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """`(width, height)` from the image header, without decoding; `InputError` as `load_image`."""
    with _opened(Path(path)) as img:
        return img.size


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as an RGB uint8 array `(h, w, 3)`, EXIF rotation applied.

    Grayscale, palette, CMYK and 16-bit images are converted; transparency is flattened onto
    white. Raises `InputError` naming the file if it is missing, not an image, corrupt, or
    larger than 50 megapixels (checked from the header, before decoding). Peak memory is about
    two copies of the RGB array (Pillow's and numpy's), not four.
    """
    with _opened(Path(path)) as img:
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
        if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            a = np.asarray(img, dtype=np.float64)
            span = a.max() - a.min()
            img = Image.fromarray(((a - a.min()) / (span or 1) * 255).astype(np.uint8))
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, rgba)
        if img.mode != "RGB":
            img = img.convert("RGB")
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


class PixelBudget:
    """At most `limit` image pixels decoded at once in this process, shared by all threads.

    `with budget.reserve(n):` waits until `n` pixels are free (an image larger than `limit`
    runs alone). It bounds the memory that concurrent server requests spend on large images.
    """

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.used = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, pixels: int) -> Iterator[None]:
        n = min(int(pixels), self.limit)
        with self._cond:
            self._cond.wait_for(lambda: self.used + n <= self.limit)
            self.used += n
        try:
            yield
        finally:
            with self._cond:
                self.used -= n
                self._cond.notify_all()
            if n >= TRIM_ABOVE_PIXELS:
                _return_freed_memory()


DECODE_BUDGET = PixelBudget(DECODE_BUDGET_PIXELS)
TRIM_ABOVE_PIXELS = 4_000_000


def _libc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _libc_trim()


def _return_freed_memory() -> None:
    """Give freed heap memory back to the OS (glibc's `malloc_trim`): the blocks of a large
    decoded image stay in the decoding thread's malloc arena otherwise, and a server's RSS
    ratchets up with every thread that once decoded one."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
