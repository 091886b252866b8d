"""Entity profiles precomputed beside the KB: what the features read of each entity's name and
description (`linker.features.EntityProfile`: content words, years, gender, name keys, name
tokens, regnal numbers), so that linking does no per-entity text work.

`build_profiles` (run by `mmel kb index`, or alone by `mmel kb profiles`) writes
`<kb_dir>/profiles.sqlite`: one row per entity, sets as space-joined words (none holds a space),
and a `meta` table with the format and the KB checksum. `load_profiles` reads it back; a KB
folder without it, or with one written for another KB build, another format or by code whose
profiles differ from today's (a sample of rows is recomputed at load), gets profiles computed
while linking instead: the same numbers, only slower, with a warning that says how to write them.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from kb.errors import KBError
from kb.files import atomic_path
from kb.lock import WriteLock
from kb.store import thread_connection
from kb.types import Entity
from linker.features import EntityProfile, entity_profile, key_tokens

log = logging.getLogger(__name__)

PROFILES_FILE = "profiles.sqlite"
FORMAT = 5  # bump when `EntityProfile` or its encoding here changes
SAMPLE = 16  # rows recomputed at load to catch profiles written by other feature code


class ProfileSource(Protocol):
    """Where candidate generation gets entity profiles from."""

    def get(self, idxs: Sequence[int], entities: Sequence[Entity]) -> list[EntityProfile]:
        """The profiles of `entities`, whose dense indexes are `idxs`, in that order."""


class ComputedProfiles:
    """Profiles computed from the entities themselves (cached per name and description)."""

    def get(self, idxs: Sequence[int], entities: Sequence[Entity]) -> list[EntityProfile]:
        return [entity_profile(e.name, e.description) for e in entities]


def _encode(idx: int, p: EntityProfile) -> tuple:
    return (idx, " ".join(sorted(p.words)), " ".join(map(str, p.years)), p.gender, p.key, p.base_key,
            p.surname_key, " ".join(sorted(p.name_tokens)), " ".join(sorted(p.numerals)), p.description_length)


_NONE: frozenset[str] = frozenset()


def _decode(row: tuple) -> EntityProfile:
    _, words, years, gender, key, base, sur, tokens, numerals, length = row
    return _make((frozenset(words.split()), tuple(map(int, years.split())) if years else (), gender, key, base, sur,
                  key_tokens(key), frozenset(tokens.split()), frozenset(numerals.split()) if numerals else _NONE,
                  length))


_make = EntityProfile._make
_COLUMNS = "idx, words, years, gender, key, base_key, surname_key, name_tokens, numerals, description_length"


class StoredProfiles:
    """Profiles read from `<kb_dir>/profiles.sqlite`, kept once read (up to `cache_size`).
    Read-only; safe to share between threads."""

    def __init__(self, path: str | os.PathLike, cache_size: int = 1 << 17):
        self.path = Path(path)
        self.cache_size = cache_size
        self._cache: dict[int, EntityProfile] = {}
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        return thread_connection(self._local, self.path)

    def meta(self) -> dict:
        return {k: json.loads(v) for k, v in self._conn().execute("SELECT key, value FROM meta")}

    def get(self, idxs: Sequence[int], entities: Sequence[Entity]) -> list[EntityProfile]:
        cache = self._cache
        idxs = [int(i) for i in idxs]
        missing = [i for i in idxs if i not in cache]
        if missing:
            if len(cache) + len(missing) > self.cache_size:
                cache.clear()
            marks = ",".join("?" * len(missing))
            for row in self._conn().execute(f"SELECT {_COLUMNS} FROM profiles WHERE idx IN ({marks})", missing):
                cache[row[0]] = _decode(row)
        # an entity without a row (or one dropped by another thread's clear) is computed
        return [cache.get(i) or entity_profile(e.name, e.description) for i, e in zip(idxs, entities)]


def build_profiles(kb, kb_dir: str | os.PathLike, progress: bool = True) -> dict:
    """Compute the profile of every entity of `kb` and write `<kb_dir>/profiles.sqlite` (to a
    temporary file first, renamed into place); returns its meta."""
    folder = Path(kb_dir)
    path = folder / PROFILES_FILE
    with WriteLock(folder, "profiled"), atomic_path(path) as tmp:
        if not kb.is_current():
            raise KBError(f"{kb.path} was rebuilt after this command opened it: run it again")
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute("CREATE TABLE profiles (idx INTEGER PRIMARY KEY, words TEXT, years TEXT, gender INTEGER, "
                         "key TEXT, base_key TEXT, surname_key TEXT, name_tokens TEXT, numerals TEXT, "
                         "description_length INTEGER)")
            entities = tqdm(kb.iter_entities(), total=len(kb), desc="entity profiles", unit=" entities",
                            disable=not progress)
            conn.executemany(f"INSERT INTO profiles ({_COLUMNS}) VALUES ({','.join('?' * 10)})",
                             (_encode(idx, _profile(e)) for idx, e in entities))
            meta = {"format": FORMAT, "kb_checksum": kb.checksum, "count": len(kb)}
            conn.executemany("INSERT INTO meta VALUES (?, ?)", ((k, json.dumps(v)) for k, v in meta.items()))
            conn.commit()
        finally:
            conn.close()
    log.info("wrote %d entity profiles to %s of KB folder %s", len(kb), PROFILES_FILE, folder.name)
    return meta


def _profile(e: Entity) -> EntityProfile:
    """`entity_profile` without filling its cache (a build meets every entity once)."""
    return entity_profile.__wrapped__(e.name, e.description)


def _stale(kb, path: Path) -> str | None:
    """Why the profiles at `path` cannot serve `kb` (None: they can)."""
    if not path.is_file():
        return "no such file"
    stored = StoredProfiles(path)
    try:
        meta = stored.meta()
    except sqlite3.DatabaseError as exc:
        return f"not a profile file ({exc})"
    if meta.get("format") != FORMAT or meta.get("kb_checksum") != kb.checksum or meta.get("count") != len(kb):
        return f"written for another KB build or format ({meta})"
    n = len(kb)
    idxs = sorted({i * n // SAMPLE for i in range(min(SAMPLE, n))})
    entities = kb.by_idx(idxs)
    if stored.get(idxs, entities) != [_profile(e) for e in entities]:
        return "they differ from what this version's features compute"
    return None


def load_profiles(kb, kb_dir: str | os.PathLike) -> ProfileSource:
    """The stored profiles of `kb` in `kb_dir` when they are current, else `ComputedProfiles`
    (same features, more time per new entity) with a warning. Only reads."""
    path = Path(kb_dir) / PROFILES_FILE
    why = _stale(kb, path)
    if why:
        log.warning("no usable entity profiles in %s (%s): computing them while linking, which is slower; "
                    "run `mmel kb profiles` (or `mmel kb index`) for this KB", path, why)
        return ComputedProfiles()
    return StoredProfiles(path)


def ensure_profiles(kb, kb_dir: str | os.PathLike, progress: bool = False) -> None:
    """Write `<kb_dir>/profiles.sqlite` unless current profiles of `kb` are there (for the
    bootstraps of the demo and the benchmarks)."""
    if _stale(kb, Path(kb_dir) / PROFILES_FILE):
        build_profiles(kb, kb_dir, progress=progress)
