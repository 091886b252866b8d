"""The data home: where knowledge bases, indexes and trained models live.

Resolution order: an explicit `--home`, then `$MMEL_HOME`, then `$XDG_DATA_HOME/mmel`
(default `~/.local/share/mmel`). Each KB is a folder `<home>/kbs/<name>/` holding `kb.sqlite`
and its indexes.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from kb.errors import ConfigError

ENV_HOME = "MMEL_HOME"
DEFAULT_KB = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    """The data home folder (not created); `ConfigError` if it exists but is not a folder."""
    if home:
        path, source = Path(home).expanduser(), "--home"
    elif os.environ.get(ENV_HOME):
        path, source = Path(os.environ[ENV_HOME]).expanduser(), ENV_HOME
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        path, source = Path(xdg) / "mmel", "the default data home"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"data home {path} (from {source}) is a file, not a folder: give --home a folder")
    return path


def kb_dir(home: str | os.PathLike | None, name: str = DEFAULT_KB) -> Path:
    """The folder of KB `name` under the data home."""
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid KB name {name!r}: use letters, digits, '_', '.', '-' (at most 64, not starting with a symbol)"
        )
    return resolve_home(home) / "kbs" / name


def kb_path(home: str | os.PathLike | None, name: str = DEFAULT_KB) -> Path:
    """The SQLite file of KB `name`."""
    return kb_dir(home, name) / "kb.sqlite"
