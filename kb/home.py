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


def kb_names(kbs: str | os.PathLike) -> list[str]:
    """The names of the built KBs in a `<home>/kbs` folder (those holding a `kb.sqlite`), sorted."""
    try:
        return sorted(p.name for p in Path(kbs).iterdir() if (p / "kb.sqlite").is_file())
    except OSError:  # no such folder, or not readable
        return []


def missing_kb_message(path: str | os.PathLike) -> str:
    """Why KB file `path` cannot be opened: with the KBs its home does have and how to choose one."""
    path = Path(path)
    folder = path.parent
    if path.name != "kb.sqlite" or folder.parent.name != "kbs":  # not a KB of a data home
        return f"no knowledge base at {path}: build one with `mmel kb build`"
    names = kb_names(folder.parent)
    home = folder.parent.parent
    if not names:
        return (f"no knowledge base {folder.name!r} in {home}, which has none: build one with "
                f"`mmel kb build --kb {folder.name}` (or `mmel kb starter`, `mmel demo`)")
    return (f"no knowledge base {folder.name!r} in {home}; it has {', '.join(repr(n) for n in names)}: "
            f"choose one with --kb NAME, or build {folder.name!r} with `mmel kb build --kb {folder.name}`")
