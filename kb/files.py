"""File helpers shared by every writer and reader: unique temporary names, atomic replacement,
output paths checked before any work, and UTF-8 errors that name the file, line and byte.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kb.errors import InputError

TEMP_SUFFIX = ".tmp"


def temp_path(path: str | os.PathLike) -> Path:
    """A unique hidden name beside `path`: `.<name>.<pid>-<random>.tmp`, so concurrent writers
    never share a temporary file."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds it is renamed over `path`,
    otherwise removed, so `path` is either its old self or complete."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike, what: str) -> Path:
    """`path` as a `Path`, or `InputError` if it cannot be written: it names a folder, or its
    folder does not exist. Call before long work, so a typo fails at once."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder: give a file name")
    folder = path.parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"{what} {path}: the folder {folder} {problem}")
    return path


def not_utf8(path: str | os.PathLike, what: str) -> InputError:
    """The error for a file that failed to decode as UTF-8, naming the first bad line and byte
    (found by streaming the file again; call it from an `except UnicodeDecodeError`)."""
    offset = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return InputError(
                    f"{what} {path} is not UTF-8 text: line {lineno} has the byte 0x{raw[exc.start]:02x} "
                    f"at offset {offset + exc.start:,}; convert the file to UTF-8"
                )
            offset += len(raw)
    return InputError(f"{what} {path} is not UTF-8 text; convert the file to UTF-8")
