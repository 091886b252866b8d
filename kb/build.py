"""Build a KB from a Wikipedia dump, a Wikidata dump, an entity list and/or an alias table.

`build_kb` validates the inputs, streams them into a `KBWriter` and finishes it atomically.
Readers for the two small line formats live here; the dump readers are `kb.dump` (Wikipedia
XML) and `kb.wikidata` (Wikidata JSON). When an entity list or a Wikidata dump is given, it
defines the KB's entities and a Wikipedia dump only adds anchors, redirects and link
probabilities to them (matched by id, `title` or name).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from kb import aliases as alias_fn
from kb.errors import InputError
from kb.files import not_utf8
from kb.store import KBWriter
from kb.types import Entity

log = logging.getLogger(__name__)


def _require_file(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p} does not exist")
    if not p.is_file():
        raise InputError(f"{what} {p} is not a file")
    return p


def read_entities(path: str | os.PathLike, skipped: list[str] | None = None) -> Iterator[Entity]:
    """Entities from JSONL lines `{"qid"|"id", "name", "description"?, "aliases"?, "title"?,
    "popularity"?, "types"?, "images"?}`: `title` the Wikipedia article (a string), `popularity`
    a number (e.g. page views, Wikidata sitelinks), `types` and `images` lists of strings.

    Malformed lines (a field of the wrong kind included) are skipped; their `path:line` and why
    are appended to `skipped` when given.
    """
    p = _require_file(path, "entity file")
    for lineno, line in _lines(p, "entity file"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            ident = str(obj.get("qid") or obj.get("id") or "").strip()
            name = str(obj.get("name") or "").strip()
            aliases = obj.get("aliases") or []
            if not ident or not name or not isinstance(aliases, list):
                raise ValueError("needs 'qid' (or 'id') and 'name'; 'aliases' must be a list")
            title = obj.get("title")
            if title is not None and (not isinstance(title, str) or not title.strip()):
                raise ValueError(f"'title' must be a non-empty string, not {title!r}")
            popularity = obj.get("popularity")
            if popularity is not None and (isinstance(popularity, bool) or not isinstance(popularity, (int, float))
                                           or popularity != popularity or popularity in (float("inf"), float("-inf"))):
                raise ValueError(f"'popularity' must be a finite number, not {popularity!r}")
            lists = {}
            for key in ("types", "images"):
                value = obj.get(key) or []
                if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                    raise ValueError(f"'{key}' must be a list of non-empty strings, not {value!r}")
                lists[key] = tuple(dict.fromkeys(v.strip() for v in value))
        except (ValueError, AttributeError) as exc:
            if skipped is not None:
                skipped.append(f"{p}:{lineno}: {exc}")
            continue
        yield Entity(
            id=ident,
            name=name,
            description=str(obj.get("description") or ""),
            aliases=tuple(str(a) for a in aliases if str(a).strip()),
            title=title.strip() if title is not None else None,
            popularity=float(popularity) if popularity is not None else None,
            **lists,
        )


def _lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """`(line number, line)` of a UTF-8 text file; `InputError` naming the line if not UTF-8."""
    with path.open(encoding="utf-8") as fh:
        try:
            yield from enumerate(fh, 1)
        except UnicodeDecodeError:
            raise not_utf8(path, what) from None


def read_alias_tsv(path: str | os.PathLike, skipped: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """`(alias, entity)` pairs from TSV lines `alias<TAB>entity` (YAGO means / Wikidata labels)."""
    p = _require_file(path, "alias file")
    for lineno, line in _lines(p, "alias file"):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
            if line.strip() and skipped is not None:
                skipped.append(f"{p}:{lineno}: expected 'alias<TAB>entity'")
            continue
        yield parts[0].strip().strip('"'), parts[1].strip()


def _entity_rows(entities: Iterator[Entity], writer: KBWriter) -> int:
    """Write entities and their derived/given aliases (person rules unless `types` say
    otherwise: `kb.aliases.is_person`); returns #entities."""
    n = 0
    for ent in entities:
        if not writer.add_entities([ent]):
            continue
        person = alias_fn.is_person(ent.types) is not False  # no types: person rules, as before types
        writer.add_names((alias, ent.id, w) for alias, w in alias_fn.derive(ent.name, person))
        writer.add_names((a, ent.id, alias_fn.EXACT) for a in ent.aliases)
        n += 1
    return n


def _counts(stats: dict) -> str:
    keys = ("lines", "items", "other_entities", "no_label", "below_min_sitelinks", "skipped")
    return ", ".join(f"{k.replace('_', ' ')}: {stats[k]:,}" for k in keys)


def build_kb(
    out: str | os.PathLike,
    *,
    dump: str | os.PathLike | None = None,
    entities: str | os.PathLike | None = None,
    aliases: str | os.PathLike | None = None,
    workers: int | None = None,
    min_count: float = 1.0,
    dump_articles: str | os.PathLike | None = None,
    wikidata: str | os.PathLike | None = None,
    lang: str = "en",
    min_sitelinks: int = 0,
    progress: bool = True,
) -> dict:
    """Build the KB file `out` from the given sources; returns build statistics.

    At least one of `dump`, `entities` or `wikidata` is required. `wikidata`: a Wikidata JSON
    dump (`kb.wikidata`) read in the languages `lang` (comma-separated; the first one's label
    is the name), keeping items with at least `min_sitelinks` sitelinks. With `entities` or
    `wikidata`, the dump's articles that are no entity are not added (they are counted in
    `dump_articles_not_in_kb`). `dump_articles`: a file of article titles (one per line) whose
    links alone count for anchors and link probabilities, e.g. the training articles of
    `mmel kb links`, so that evaluation articles leave no trace in the priors. Nothing is
    replaced unless the build completes.
    """
    if dump is None and entities is None and wikidata is None:
        raise InputError("nothing to build from: give --dump PATH, --entities PATH and/or --wikidata PATH")
    if min_sitelinks < 0:
        raise InputError(f"--min-sitelinks must be 0 or more, not {min_sitelinks}")
    if (min_sitelinks or lang != "en") and wikidata is None:
        raise InputError("--lang and --min-sitelinks apply to --wikidata: give --wikidata PATH")
    if dump_articles is not None and dump is None:
        raise InputError("--dump-articles needs --dump: it names the dump articles whose links count")
    langs = None
    if wikidata is not None:
        from kb.wikidata import parse_langs

        langs = parse_langs(lang)
    for path, what in ((dump, "dump"), (entities, "entity file"), (aliases, "alias file"),
                       (dump_articles, "article list"), (wikidata, "Wikidata dump")):
        if path is not None:
            _require_file(path, what)
    skipped: list[str] = []
    sources: dict[str, str] = {}
    stats: dict = {}
    with KBWriter(out) as writer:
        if entities is not None:
            n = _entity_rows(read_entities(entities, skipped), writer)
            if n == 0:
                raise InputError(f"entity file {entities} has no valid entity lines"
                                 + (f"; the first bad one: {skipped[0]}" if skipped else ""))
            sources["entities"] = str(Path(entities).resolve())
        if wikidata is not None:
            from kb.wikidata import ingest_wikidata

            stats["wikidata"] = ingest_wikidata(wikidata, writer, langs, min_sitelinks, workers=workers,
                                                progress=progress)
            if stats["wikidata"]["entities"] == 0:
                raise InputError(f"Wikidata dump {wikidata} gave no entities ({_counts(stats['wikidata'])})")
            sources["wikidata"] = str(Path(wikidata).resolve())
        if dump is not None:
            from kb.dump import ingest_dump
            from kb.wikilinks import read_titles

            only = read_titles(dump_articles) if dump_articles is not None else None
            stats["dump"] = ingest_dump(dump, writer, workers=workers, progress=progress, only=only,
                                        add_articles=entities is None and wikidata is None)
            sources["dump"] = str(Path(dump).resolve())
            if dump_articles is not None:
                sources["dump_articles"] = str(Path(dump_articles).resolve())
        if aliases is not None:
            writer.add_aliases(read_alias_tsv(aliases, skipped))
            sources["aliases"] = str(Path(aliases).resolve())
        for line in skipped[:20]:
            log.warning("skipped %s", line)
        writer.set_meta(sources=sources, skipped_lines=len(skipped), **stats)
        stats.update(writer.finish(min_count=min_count, progress=progress))
    stats["skipped_lines"] = len(skipped)
    return stats
