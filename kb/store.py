"""The SQLite knowledge base: writer (atomic build) and reader (lookups).

Layout of `kb.sqlite` (WAL mode once built):

- `entities(idx, id, name, description, title, popularity, types, images)`: `idx` is the dense
  row number FAISS indexes use; `id` is the QID or the Wikipedia title; `title` the Wikipedia
  article (NULL if unknown), `popularity` a number such as Wikidata's sitelink count, else the
  number of a dump's links to the entity (NULL if neither is known), `types` and `images` JSON lists (class ids; Commons file names). The last four were
  added in schema version 3; older KBs are read with them empty.
- `priors(mention, entity_idx, p, anchors)`: p(e|m) per mention key (see `kb.normalize`),
  indexed on `mention`.
- `mentions(mention, anchors, entities, link_prob)`: per mention key, how often it was a link
  anchor, how many entities it may name, and (KBs from a dump) its link probability: of the
  articles where the key occurs as a capitalised span or a link anchor, the share that link it
  (NULL without dump text). Used by mention spotting. Added in schema version 2; version 1 KBs
  are still read (without link probabilities).
- `redirects(source, target)`: Wikipedia redirects as read from the dump.
- `meta(key, value)`: JSON values: sources, counts, build time, `checksum`.

A `KBWriter` holds the KB folder's write lock (`kb.lock`) from start to end, builds into a
unique temporary file and renames it over `<path>` only when `finish()` completes, so a killed
build leaves the previous KB untouched and a second concurrent build fails at once instead of
replacing the KB with a half-written file.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import sqlite_utils
from tqdm import tqdm

from kb import prior as prior_fn
from kb.errors import KBError
from kb.files import temp_path
from kb.home import missing_kb_message
from kb.lock import LOCK_FILE, WriteLock
from kb.normalize import mention_key
from kb.types import Candidate, Entity

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)  # 1: no mentions.link_prob; 1-2: no entities.title/popularity/types/images
ENTITY_CACHE = 1 << 17  # entities `KnowledgeBase.by_idx` keeps once read
_SOURCES = ("anchors", "aliases", "names")


class KBWriter:
    """Build a KB at `path` atomically. Use as a context manager, then call `finish()`.

    Raises `KBBusyError` at once if another process is writing the same KB folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        folder = self.path.parent.absolute()
        # the folders this build creates (deepest first): an aborted build removes them again
        self._created = [p for p in (folder, *folder.parents) if not p.exists()]
        self._lock = WriteLock(self.path.parent, "built").acquire()  # also removes stale temporaries
        self.tmp = temp_path(self.path)
        try:
            self.conn = sqlite3.connect(self.tmp)
        except BaseException:
            self._unlock_and_remove_created()
            raise
        self.conn.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;"
            "PRAGMA cache_size=-262144;"
        )
        self.db = sqlite_utils.Database(self.conn)
        self.db["entities"].create(
            {"idx": int, "id": str, "name": str, "description": str, "title": str, "popularity": float,
             "types": str, "images": str}, pk="idx"
        )
        self.db["entities"].create_index(["id"], unique=True)
        self.db["redirects"].create({"source": str, "target": str}, pk="source")
        self.db["staging"].create(
            {"mention": str, "ref": str, "source": str, "weight": float},
            pk=("mention", "ref", "source"),
        )
        self.db["occurrences"].create({"mention": str, "linked": float, "docs": float}, pk="mention")
        self.db["meta"].create({"key": str, "value": str}, pk="key")
        self._next_idx = 0
        self.duplicates = 0
        self._dump_articles = False  # whether add_dump_articles was called
        self._started = time.time()
        self._finished = False

    def __enter__(self) -> KBWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._finished:
            self.abort()

    def abort(self) -> None:
        """Drop the temporary build; the previous KB (if any) stays as it was, and a KB folder
        this build created is removed."""
        try:
            self.conn.close()
        finally:
            self.tmp.unlink(missing_ok=True)
            self._unlock_and_remove_created()

    def _unlock_and_remove_created(self) -> None:
        """Release the lock; remove the folders this build created if they hold nothing but the
        lock file (unlinked while still held)."""
        try:
            if self._created and {p.name for p in self._created[0].iterdir()} <= {LOCK_FILE}:
                (self._created[0] / LOCK_FILE).unlink(missing_ok=True)
        finally:
            self._lock.release()
        for created in self._created:
            try:
                created.rmdir()
            except OSError:  # not empty: another writer's files (or the lock just taken again)
                break

    # -- adding ------------------------------------------------------------------------------

    def add_entities(self, entities: Iterable[Entity]) -> int:
        """Add entities; a repeated `id` is skipped and counted in `duplicates`. Returns #added."""
        added = 0
        cur = self.conn.cursor()
        for ent in entities:
            cur.execute(
                "INSERT OR IGNORE INTO entities(idx, id, name, description, title, popularity, types, images) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (self._next_idx, ent.id, ent.name, ent.description, ent.title, ent.popularity,
                 json.dumps(list(ent.types), ensure_ascii=False) if ent.types else None,
                 json.dumps(list(ent.images), ensure_ascii=False) if ent.images else None),
            )
            if cur.rowcount:
                self._next_idx += 1
                added += 1
            else:
                self.duplicates += 1
        return added

    def add_dump_articles(self, titles: Iterable[str]) -> None:
        """Record the titles of a dump's articles that were not added as entities (the KB is
        defined by an entity list or Wikidata); `finish()` counts those that name no entity
        (`dump_articles_not_in_kb`)."""
        if not self._dump_articles:
            self.conn.execute("CREATE TEMP TABLE dump_articles(title TEXT PRIMARY KEY) WITHOUT ROWID")
            self._dump_articles = True
        self.conn.executemany("INSERT OR IGNORE INTO dump_articles VALUES (?)", ((t,) for t in titles))

    def add_redirects(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Add `(redirect title, target title)` pairs; they are resolved in `finish()`."""
        self.conn.executemany("INSERT OR REPLACE INTO redirects VALUES (?,?)", pairs)

    def add_anchor_counts(self, counts: Mapping[tuple[str, str], float]) -> None:
        """Add `{(anchor text, target title): count}`; counts accumulate across calls."""
        self._stage("anchors", ((s, t, c) for (s, t), c in counts.items()))

    def add_aliases(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Add `(alias, entity id or title)` pairs from a YAGO/Wikidata alias table."""
        self._stage("aliases", ((a, e, 1.0) for a, e in pairs))

    def add_names(self, rows: Iterable[tuple[str, str, float]]) -> None:
        """Add derived `(alias, entity id, weight)` rows (titles, redirects, name variants)."""
        self._stage("names", rows)

    def add_occurrences(self, counts: Mapping[str, tuple[int, int]]) -> None:
        """Add `{surface: (articles linking it, articles where it occurs)}` for link
        probability; counts accumulate across calls."""
        self.conn.executemany(
            "INSERT INTO occurrences(mention, linked, docs) VALUES (?,?,?) ON CONFLICT(mention) "
            "DO UPDATE SET linked = linked + excluded.linked, docs = docs + excluded.docs",
            ((k, linked, docs) for surface, (linked, docs) in counts.items() if (k := mention_key(surface))),
        )

    def _stage(self, source: str, rows: Iterable[tuple[str, str, float]]) -> None:
        self.conn.executemany(
            "INSERT INTO staging(mention, ref, source, weight) VALUES (?,?,?,?) "
            "ON CONFLICT(mention, ref, source) DO UPDATE SET weight = "
            "CASE WHEN excluded.source = 'anchors' THEN weight + excluded.weight "
            "ELSE max(weight, excluded.weight) END",
            ((k, ref, source, w) for surface, ref, w in rows if (k := mention_key(surface))),
        )

    def set_meta(self, **values) -> None:
        self.db["meta"].upsert_all(
            [{"key": k, "value": json.dumps(v)} for k, v in values.items()], pk="key"
        )

    # -- finishing ---------------------------------------------------------------------------

    def finish(self, min_count: float = 1.0, progress: bool = True) -> dict:
        """Resolve references, compute p(e|m), index, checksum, and move into place."""
        unresolved = self._resolve_references()
        n_mentions, n_priors = self._write_priors(min_count, progress)
        stats = self._index_and_count(unresolved, n_mentions, n_priors)
        self.set_meta(
            schema_version=SCHEMA_VERSION,
            checksum=_checksum(self.conn),
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            build_seconds=round(time.time() - self._started, 2),
            **stats,
        )
        self._move_into_place()
        return stats

    def _resolve_references(self) -> int:
        """Fill the temporary table `resolve(ref → entity idx)` from ids, Wikipedia titles, names
        and redirects (in that order of precedence; redirect chains up to three hops); returns
        the number of redirects left unresolved."""
        c = self.conn
        c.executescript(
            """
            CREATE TEMP TABLE resolve(ref TEXT PRIMARY KEY, idx INTEGER) WITHOUT ROWID;
            INSERT OR IGNORE INTO resolve SELECT id, idx FROM entities;
            INSERT OR IGNORE INTO resolve SELECT title, idx FROM entities WHERE title IS NOT NULL;
            INSERT OR IGNORE INTO resolve SELECT name, idx FROM entities;
            """
        )
        for _ in range(3):  # redirect chains (double redirects) up to three hops
            c.execute(
                "INSERT OR IGNORE INTO resolve SELECT r.source, x.idx FROM redirects r "
                "JOIN resolve x ON x.ref = r.target"
            )
        return c.execute(
            "SELECT count(*) FROM redirects WHERE source NOT IN (SELECT ref FROM resolve)"
        ).fetchone()[0]

    def _write_priors(self, min_count: float, progress: bool) -> tuple[int, int]:
        """Combine the staged anchors, aliases and names of each mention key into p(e|m) rows
        (`priors`) and per-mention counts (`mentions`); returns (#mentions, #priors)."""
        c = self.conn
        c.execute(
            "CREATE TABLE priors(mention TEXT NOT NULL, entity_idx INTEGER NOT NULL, "
            "p REAL NOT NULL, anchors REAL NOT NULL)"
        )
        c.execute(
            "CREATE TABLE mentions(mention TEXT PRIMARY KEY, anchors REAL, entities INTEGER, link_prob REAL)"
        )
        total = c.execute("SELECT count(DISTINCT mention) FROM staging").fetchone()[0]
        rows = c.execute(
            "SELECT s.mention, s.source, x.idx, sum(s.weight) FROM staging s "
            "JOIN resolve x ON x.ref = s.ref GROUP BY s.mention, s.source, x.idx "
            "ORDER BY s.mention"
        )
        out = self.conn.cursor()
        n_priors = n_mentions = 0
        bar = tqdm(total=total, desc="priors", unit=" mentions", disable=not progress)
        for mention, group in itertools.groupby(rows, key=lambda r: r[0]):
            by_source: dict[str, dict[str, float]] = {s: {} for s in _SOURCES}
            for _, source, idx, weight in group:
                by_source[source][idx] = weight
            p = prior_fn.combine(
                by_source["anchors"], by_source["aliases"], by_source["names"], min_count
            )
            anchors = by_source["anchors"]
            out.executemany(
                "INSERT INTO priors VALUES (?,?,?,?)",
                [(mention, idx, prob, anchors.get(idx, 0.0)) for idx, prob in p.items()],
            )
            if p:
                out.execute(
                    "INSERT INTO mentions(mention, anchors, entities) VALUES (?,?,?)",
                    (mention, sum(anchors.values()), len(p)),
                )
                n_mentions += 1
                n_priors += len(p)
            bar.update(1)
        bar.close()
        return n_mentions, n_priors

    def _index_and_count(self, unresolved: int, n_mentions: int, n_priors: int) -> dict:
        """Drop the staging table, index the priors; the build statistics."""
        c = self.conn
        dropped_anchors = c.execute(
            "SELECT coalesce(sum(weight), 0) FROM staging s WHERE source = 'anchors' AND "
            "NOT EXISTS (SELECT 1 FROM resolve x WHERE x.ref = s.ref)"
        ).fetchone()[0]
        c.execute(
            "UPDATE mentions SET link_prob = min(1.0, o.linked / o.docs) FROM occurrences o "
            "WHERE o.mention = mentions.mention AND o.docs > 0"
        )
        with_link_prob = c.execute("SELECT count(*) FROM mentions WHERE link_prob IS NOT NULL").fetchone()[0]
        c.executescript(
            "DROP TABLE staging; DROP TABLE occurrences; CREATE INDEX priors_mention ON priors(mention, p DESC);"
            "CREATE INDEX priors_entity ON priors(entity_idx);"
        )
        # an entity whose list or Wikidata gave no popularity gets the dump's links to it
        from_anchors = c.execute(
            "UPDATE entities SET popularity = a.n FROM (SELECT entity_idx, sum(anchors) AS n FROM priors "
            "GROUP BY entity_idx HAVING n > 0) a WHERE a.entity_idx = entities.idx AND entities.popularity IS NULL"
        ).rowcount
        filled = c.execute(
            "SELECT count(title), count(popularity), count(types), count(images) FROM entities"
        ).fetchone()
        extra = {}
        if self._dump_articles:
            extra["dump_articles_not_in_kb"] = c.execute(
                "SELECT count(*) FROM dump_articles a WHERE NOT EXISTS (SELECT 1 FROM resolve x WHERE x.ref = a.title)"
            ).fetchone()[0]
        return {
            "entities": c.execute("SELECT count(*) FROM entities").fetchone()[0],
            **dict(zip(("entities_with_title", "entities_with_popularity", "entities_with_types",
                        "entities_with_images"), filled)),
            "popularity_from_anchors": from_anchors,
            **extra,
            "redirects": c.execute("SELECT count(*) FROM redirects").fetchone()[0],
            "redirects_unresolved": unresolved,
            "mentions": n_mentions,
            "priors": n_priors,
            "mentions_with_link_prob": with_link_prob,
            "anchors_dropped": int(round(dropped_anchors)),  # a count of links (weights are counts)
            "duplicate_entities": self.duplicates,
        }

    def _move_into_place(self) -> None:
        """Commit, compact, switch to WAL and rename the temporary file over the KB."""
        c = self.conn
        c.commit()
        c.execute("VACUUM")
        c.execute("PRAGMA journal_mode=WAL")
        c.close()
        os.replace(self.tmp, self.path)
        for side in ("-wal", "-shm"):  # stale files of the replaced KB
            Path(f"{self.path}{side}").unlink(missing_ok=True)
        self._finished = True
        self._lock.release()


def _checksum(conn: sqlite3.Connection) -> str:
    h = hashlib.sha256()
    for row in conn.execute("SELECT idx, id, name, description FROM entities ORDER BY idx"):
        h.update(json.dumps(row, ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def _entity(row: tuple) -> Entity:
    """An `Entity` from `(id, name, description, title, popularity, types, images)` columns."""
    ident, name, description, title, popularity, types, images = row
    return Entity(
        id=ident, name=name, description=description, title=title, popularity=popularity,
        types=tuple(json.loads(types)) if types else (), images=tuple(json.loads(images)) if images else (),
    )


_INHERITED: list[sqlite3.Connection] = []  # connections a forked child must neither use nor close


def thread_connection(local: threading.local, path: Path) -> sqlite3.Connection:
    """This thread's read-only connection to the SQLite file `path`, kept in `local`.

    A process forked after the connection was opened (`mmel link --workers`) opens its own:
    SQLite connections must not cross a fork. The inherited one is kept, unused, so that it is
    not closed under the parent either."""
    conn = getattr(local, "conn", None)
    if conn is not None and local.pid != os.getpid():
        _INHERITED.append(conn)
        conn = None
    if conn is None:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        local.conn, local.pid = conn, os.getpid()
    return conn


_COUNTS = ("anchors_dropped",)  # counts that KBs of earlier versions stored as floats


def _as_count(value):
    """A whole float as an int (`1.0` -> `1`); anything else unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class KnowledgeBase:
    """Read-only access to a built KB. Safe to share between threads."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise KBError(missing_kb_message(self.path))
        self._local = threading.local()
        self._entities: dict[int, Entity] = {}  # by_idx's cache
        try:
            self.meta = {
                k: json.loads(v) for k, v in self._conn().execute("SELECT key, value FROM meta")
            }
            self._size = self._conn().execute("SELECT count(*) FROM entities").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise KBError(f"{self.path} is not a knowledge base ({exc})") from None
        if self.meta.get("schema_version") not in READABLE_VERSIONS:
            raise KBError(
                f"{self.path} has schema version {self.meta.get('schema_version')!r}, "
                f"this version reads {', '.join(map(str, READABLE_VERSIONS))}: rebuild it with `mmel kb build`"
            )
        self._link_prob = "link_prob" if self.meta["schema_version"] >= 2 else "NULL"
        self._columns = "id, name, description, " + (
            "title, popularity, types, images" if self.meta["schema_version"] >= 3 else "NULL, NULL, NULL, NULL"
        )

    def _conn(self) -> sqlite3.Connection:
        return thread_connection(self._local, self.path)

    @property
    def checksum(self) -> str:
        return self.meta["checksum"]

    def is_current(self) -> bool:
        """Whether `path` still holds this KB (it may have been rebuilt since it was opened;
        this object keeps reading the file it opened)."""
        try:
            return KnowledgeBase(self.path).checksum == self.checksum
        except KBError:
            return False

    def __len__(self) -> int:
        return self._size

    def get(self, entity_id: str) -> Entity | None:
        row = self._conn().execute(
            f"SELECT {self._columns} FROM entities WHERE id = ?", (entity_id,)
        ).fetchone()
        return _entity(row) if row else None

    def idx_of(self, entity_id: str) -> int | None:
        row = self._conn().execute("SELECT idx FROM entities WHERE id = ?", (entity_id,)).fetchone()
        return row[0] if row else None

    def by_idx(self, idxs: Iterable[int]) -> list[Entity]:
        """Entities by dense index, in the order given (kept once read, up to `ENTITY_CACHE`)."""
        idxs = [int(i) for i in idxs]
        cache = self._entities
        rows = {i: e for i in idxs if (e := cache.get(i)) is not None}
        missing = [i for i in idxs if i not in rows]
        if missing:
            if len(cache) + len(missing) > ENTITY_CACHE:
                cache.clear()
            marks = ",".join("?" * len(missing))
            for r in self._conn().execute(
                f"SELECT idx, {self._columns} FROM entities WHERE idx IN ({marks})", missing
            ):
                rows[r[0]] = cache[r[0]] = _entity(r[1:])
        return [rows[i] for i in idxs]

    def iter_entities(self, batch: int = 10_000, start: int = 0,
                      stop: int | None = None) -> Iterator[tuple[int, Entity]]:
        """All `(idx, entity)` in index order, those with `start <= idx < stop` if given."""
        last = start - 1
        stop = 2**63 - 1 if stop is None else stop
        while True:
            rows = self._conn().execute(
                f"SELECT idx, {self._columns} FROM entities WHERE idx > ? AND idx < ? ORDER BY idx LIMIT ?",
                (last, stop, batch),
            ).fetchall()
            if not rows:
                return
            for r in rows:
                yield r[0], _entity(r[1:])
            last = rows[-1][0]

    def entity_images(self) -> Iterator[tuple[int, str, tuple[str, ...]]]:
        """`(idx, id, image file names)` of every entity that has images (Wikidata P18, an
        entity list's `images`), in index order; nothing for KBs older than schema 3."""
        if self.meta["schema_version"] < 3:
            return
        for idx, ident, images in self._conn().execute(
            "SELECT idx, id, images FROM entities WHERE images IS NOT NULL ORDER BY idx"
        ):
            yield idx, ident, tuple(json.loads(images))

    def lookup(self, surface: str, k: int = 30) -> list[Candidate]:
        """The top `k` entities by p(e|m) for a surface string (case and diacritics folded)."""
        return self.lookup_key(mention_key(surface), k)

    def lookup_key(self, key: str, k: int = 30) -> list[Candidate]:
        rows = self._conn().execute(
            "SELECT e.id, e.name, p.p FROM priors p JOIN entities e ON e.idx = p.entity_idx "
            "WHERE p.mention = ? ORDER BY p.p DESC, e.idx LIMIT ?",
            (key, k),
        ).fetchall()
        return [Candidate(entity=i, name=n, score=p, prior=p) for i, n, p in rows]

    def prior_candidates(self, key: str, k: int = 100) -> list[tuple[int, float]]:
        """The top `k` `(entity idx, p(e|m))` for a mention key, most probable first."""
        return self._conn().execute(
            "SELECT entity_idx, p FROM priors WHERE mention = ? ORDER BY p DESC, entity_idx LIMIT ?",
            (key, k),
        ).fetchall()

    def mention_info(self, keys: Iterable[str]) -> dict[str, tuple[float, int, float | None]]:
        """`{key: (anchor count, number of entities, link probability or None)}` for the known
        keys among `keys` (one query)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, tuple[float, int, float | None]] = {}
        for lo in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            part = keys[lo : lo + 500]
            rows = self._conn().execute(
                f"SELECT mention, anchors, entities, {self._link_prob} FROM mentions "
                f"WHERE mention IN ({','.join('?' * len(part))})", part,
            )
            out.update((r[0], r[1:]) for r in rows)
        return out

    def linked_names(self) -> Iterator[tuple[str, str]]:
        """Every `(mention key, entity name)` of a link counted from the dump (anchors), the
        pairs `kb.morphology.learn_suffix_rules` learns from; none for an entity list alone."""
        yield from self._conn().execute(
            "SELECT p.mention, e.name FROM priors p JOIN entities e ON e.idx = p.entity_idx WHERE p.anchors > 0")

    def redirects(self) -> Iterator[tuple[str, str]]:
        """Every `(redirect title, target title)` read from the dump the KB was built from."""
        yield from self._conn().execute("SELECT source, target FROM redirects")

    def iter_mentions(self) -> Iterator[tuple[str, float, int]]:
        """Every `(mention key, anchor count, number of entities)`."""
        yield from self._conn().execute("SELECT mention, anchors, entities FROM mentions")

    def info(self) -> dict:
        """Counts, sizes, sources and build time, for `kb info`."""
        size = sum(
            p.stat().st_size for p in self.path.parent.iterdir() if p.is_file()
        )
        meta = {k: _as_count(v) if k in _COUNTS else v for k, v in self.meta.items()}  # KBs built before
        return {"path": str(self.path), "size_mb": round(size / 2**20, 2), **meta}
