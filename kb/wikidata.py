"""Stream a Wikidata JSON dump (`latest-all.json[.bz2|.gz]`) into a `KBWriter`, parsing on all cores.

The dump is one JSON array with one entity per line, each line but the last ending with ','
(Wikibase's "JSON dump format"). As with the XML reader (`kb.dump`), the main process reads
the (bz2/gzip-compressed, detected from magic bytes) file in fixed-size blocks cut at line ends
and hands them to worker processes, at most `2 × workers` in flight, so memory stays flat in
the dump's size. A worker decodes each line and keeps only what the KB needs of an item
(`item_fields`): the label and aliases in the chosen languages, the description, the English
Wikipedia sitelink title, the number of sitelinks (popularity), `P31`/`P279` class ids (types)
and `P18` image file names.

Lines are decoded by a fast path (`decode_line`) that decodes only those parts of the line with
`json`'s C decoder, and falls back to decoding the whole line when the line does not have the
dump's usual shape; both give the same entity.

Properties, lexemes and other non-item entities are skipped and counted (`other_entities`),
as are items without a label in any chosen language (`no_label`), items below
`min_sitelinks` (`below_min_sitelinks`) and malformed lines (`skipped`: not JSON, no id).
"""
from __future__ import annotations

import collections
import functools
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from kb import aliases as alias_fn
from kb.dump import ByteProgress, _tell, map_in_order, open_dump
from kb.errors import InputError
from kb.store import KBWriter
from kb.types import Entity

log = logging.getLogger(__name__)

BLOCK_BYTES = 4 << 20  # bytes read per step; one chunk of lines goes to one worker
TYPE_PROPERTIES = ("P31", "P279")  # instance of, subclass of
IMAGE_PROPERTY = "P18"
_EXAMPLES = 5
_TAIL = 1 << 16  # bytes kept of the dump's end; its last line is ']' (blank lines aside)


@dataclass(slots=True)
class ChunkResult:
    """What one worker returns for one chunk of lines."""

    entities: list[Entity] = field(default_factory=list)
    counts: collections.Counter = field(default_factory=collections.Counter)
    malformed: list[str] = field(default_factory=list)  # first few problems, for the log


def parse_langs(lang: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """`"en,de"` → `("en", "de")`; `InputError` if no language is given."""
    parts = lang.split(",") if isinstance(lang, str) else list(lang)
    langs = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if not langs:
        raise InputError(f"--lang {lang!r} names no language: give codes such as en or en,de,fr")
    return langs


def _claim_values(claims: dict, prop: str) -> Iterator[object]:
    """The values of the non-deprecated `prop` statements with a value."""
    for st in claims.get(prop) or ():
        if not isinstance(st, dict) or st.get("rank") == "deprecated":
            continue
        snak = st.get("mainsnak") or {}
        value = (snak.get("datavalue") or {}).get("value") if isinstance(snak, dict) else None
        if value is not None:
            yield value


def _item_id(value: object) -> str | None:
    """The id of a `wikibase-entityid` value (`{"id": "Q5"}`, or older `{"numeric-id": 5}`)."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("id"), str):
        return value["id"]
    num = value.get("numeric-id")
    return f"Q{num}" if isinstance(num, int) else None


def _text(obj: object, lang: str) -> str:
    """`obj[lang]["value"]` of a labels/descriptions map, "" if absent."""
    if not isinstance(obj, dict):
        return ""
    v = obj.get(lang)
    return v.get("value", "").strip() if isinstance(v, dict) and isinstance(v.get("value"), str) else ""


def item_fields(obj: dict, langs: tuple[str, ...]) -> Entity | None:
    """The KB entity of one decoded item, or None if it has no label in `langs`.

    name: the label in the first of `langs` that has one; aliases: the other languages' labels
    and the aliases in all of `langs`; description: the first of `langs` that has one;
    popularity: the number of sitelinks; types: `P31` then `P279` ids; images: `P18` values.
    """
    labels = obj.get("labels")
    names = [t for lang in langs if (t := _text(labels, lang))]
    if not names:
        return None
    name = names[0]
    aliases = dict.fromkeys(names[1:])
    raw_aliases = obj.get("aliases")
    if isinstance(raw_aliases, dict):
        for lang in langs:
            for a in raw_aliases.get(lang) or ():
                if isinstance(a, dict) and isinstance(a.get("value"), str) and a["value"].strip():
                    aliases[a["value"].strip()] = None
    aliases.pop(name, None)
    descriptions = obj.get("descriptions")
    description = next((t for lang in langs if (t := _text(descriptions, lang))), "")
    sitelinks = obj.get("sitelinks")
    sitelinks = sitelinks if isinstance(sitelinks, dict) else {}
    enwiki = sitelinks.get("enwiki")
    title = enwiki.get("title") if isinstance(enwiki, dict) and isinstance(enwiki.get("title"), str) else None
    claims = obj.get("claims")
    claims = claims if isinstance(claims, dict) else {}
    types = dict.fromkeys(
        i for prop in TYPE_PROPERTIES for v in _claim_values(claims, prop) if (i := _item_id(v))
    )
    images = dict.fromkeys(v for v in _claim_values(claims, IMAGE_PROPERTY) if isinstance(v, str) and v)
    return Entity(
        id=obj["id"], name=name, description=description, aliases=tuple(aliases), title=title or None,
        popularity=float(len(sitelinks)), types=tuple(types), images=tuple(images),
    )


_DECODER = json.JSONDecoder()
_CLAIM_KEY = re.compile(r'"(%s)":\s*\[' % "|".join((*TYPE_PROPERTIES, IMAGE_PROPERTY)))
_CLAIMS, _SITELINKS = '"claims":', '"sitelinks":'


def _decode_fast(line: str) -> dict | None:
    """What `item_fields` reads of one entity line, decoding only those parts: the members
    before `claims` (`type`, `id`, labels, descriptions, aliases), the `P31`/`P279`/`P18`
    statements and the sitelinks; None when the line does not have the shape Wikibase writes
    (`{"type":"item","id":…,"labels":…,"descriptions":…,"aliases":…,"claims":…,"sitelinks":…}`,
    then the caller decodes all of it).

    A JSON key such as `"claims":` or `"P31":[` cannot occur inside a string (its quotes would
    be escaped), so each match is a key: the first `"claims":` is the item's (no other object
    has one), and statement lists (objects with a `mainsnak`) are told from the snak lists of
    qualifiers and references (objects with a `snaktype`)."""
    at = line.find(_CLAIMS)
    if at < 0 or not line.endswith("}"):
        return None
    head = line[:at].rstrip()
    if not head.endswith(","):
        return None
    try:
        obj = json.loads(head[:-1] + "}")
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or "type" not in obj:
            return None
        if obj["type"] != "item":
            return obj
        links = line.rfind(_SITELINKS)
        if "labels" not in obj or links < at:
            return None
        claims: dict[str, list] = {}
        for m in _CLAIM_KEY.finditer(line, at, links):
            if line.startswith('{"snaktype"', m.end()):  # a qualifier's or a reference's snaks
                continue
            statements = _DECODER.raw_decode(line, m.end() - 1)[0]
            if statements and all(isinstance(st, dict) and "mainsnak" in st for st in statements):
                claims.setdefault(m.group(1), []).extend(statements)
        start = links + len(_SITELINKS)
        while line[start] in " \t":
            start += 1
        obj["sitelinks"] = _DECODER.raw_decode(line, start)[0]
    except (ValueError, IndexError):
        return None
    obj["claims"] = claims
    return obj


def decode_line(line: bytes) -> object:
    """One dump line (without its trailing ',') as far as the KB needs it: `_decode_fast`'s
    partial entity, or else the whole decoded JSON value. `ValueError` if it is not JSON
    (`UnicodeDecodeError` included)."""
    text = line.decode("utf-8")
    return _decode_fast(text) or json.loads(text)


def parse_chunk(chunk: bytes, langs: tuple[str, ...] = ("en",), min_sitelinks: int = 0,
                first_line: int = 1) -> ChunkResult:
    """Parse the complete lines of `chunk` (pure: bytes in, results out); `first_line` is the
    dump line number of its first line, for the messages of malformed lines."""
    out = ChunkResult()
    counts = out.counts
    for n, raw in enumerate(chunk.split(b"\n"), first_line):
        line = raw.strip()
        if line.endswith(b","):
            line = line[:-1]
        if not line or line in (b"[", b"]"):
            continue
        counts["lines"] += 1
        try:
            obj = decode_line(line)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            counts["skipped"] += 1
            if len(out.malformed) < _EXAMPLES:
                out.malformed.append(f"line {n:,}: not JSON ({exc})")
            continue
        ident = obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(ident, str) or not ident.strip():
            counts["skipped"] += 1
            if len(out.malformed) < _EXAMPLES:
                out.malformed.append(f"line {n:,}: an entity without an 'id'")
            continue
        if obj.get("type", "item") != "item" or not ident.startswith("Q"):
            counts["other_entities"] += 1
            continue
        counts["items"] += 1
        ent = item_fields(obj, langs)
        if ent is None:
            counts["no_label"] += 1
            continue
        if ent.popularity < min_sitelinks:
            counts["below_min_sitelinks"] += 1
            continue
        out.entities.append(ent)
    counts["entities"] = len(out.entities)
    return out


def iter_chunks(fh: BinaryIO, name: str, block: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """`(first line number, bytes)` chunks of whole lines. Raises `InputError` if the stream is
    not a Wikidata JSON dump, is a truncated or corrupt compressed file, or ends inside an
    entity (an array without its closing `]`)."""
    consumed = 0
    raw = getattr(fh, "fileobj", None) or getattr(fh, "_fp", None)

    def read() -> bytes:
        nonlocal consumed
        try:
            data = fh.read(block)
        except (EOFError, OSError) as exc:
            at = _tell(fh, raw) if raw is not None else None
            where = f" at compressed byte {at:,}" if at is not None else ""
            raise InputError(
                f"dump {name} is truncated or corrupt{where}, after {consumed:,} readable uncompressed "
                f"bytes ({exc})"
            ) from None
        consumed += len(data)
        return data

    data = read()
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith((b"[", b"{")):
        raise InputError(
            f"dump {name} is not a Wikidata JSON dump (it does not start with '[' or '{{'): expected "
            f"latest-all.json, .json.bz2 or .json.gz"
        )
    array = head.startswith(b"[")
    line_no, rest, tail = 1, b"", b""  # tail: the end of what was yielded, for the closing ']'
    while True:
        buf = rest + data if rest else data
        cut = buf.rfind(b"\n") + 1
        if cut:
            chunk = buf[:cut]
            yield line_no, chunk
            line_no += chunk.count(b"\n")
            tail = chunk[-_TAIL:] if cut >= _TAIL else (tail + chunk)[-_TAIL:]
            buf = buf[cut:]
        rest = buf
        if not data:
            break
        data = read()
    if rest.strip():
        yield line_no, rest
    end = (tail + rest).rstrip()
    last = end[end.rfind(b"\n") + 1 :]
    if array and last.strip() != b"]":
        raise InputError(
            f"dump {name} ends inside an entity at uncompressed byte {consumed:,} (no closing ']'): "
            f"truncated file"
        )


def _parse_task(args: tuple) -> ChunkResult:
    parser, first_line, chunk = args
    return parser(chunk, first_line=first_line)


def parse_wikidata(
    path: str | os.PathLike,
    langs: tuple[str, ...] = ("en",),
    min_sitelinks: int = 0,
    workers: int | None = None,
    progress: bool = True,
    block: int | None = None,
) -> Iterator[ChunkResult]:
    """Parsed chunks of a Wikidata dump, in dump order, parsed by `workers` processes; at most
    `2 × workers` chunks are in flight, so memory does not depend on the dump's size."""
    workers = max(1, workers or os.cpu_count() or 1)
    fh = open_dump(path)
    parser = functools.partial(parse_chunk, langs=tuple(langs), min_sitelinks=min_sitelinks)
    tick = ByteProgress(fh, path, "wikidata", "entities", "per_s", progress)
    tasks = ((parser, first, chunk) for first, chunk in iter_chunks(fh, str(path), block or BLOCK_BYTES))
    try:
        for result in map_in_order(_parse_task, tasks, workers, freeze=True):
            yield tick(result)
    finally:
        tick.close()
        fh.close()


def ingest_wikidata(
    path: str | os.PathLike,
    writer: KBWriter,
    langs: tuple[str, ...] = ("en",),
    min_sitelinks: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Stream the Wikidata dump at `path` into `writer`; returns counts and throughput.

    Items become entities (id = QID, name = label, with title, popularity, types and images);
    the name's derived forms (`kb.aliases.derive`, with the person rules for humans, `P31` Q5, and for
    items without types) and the aliases become names of the entity.
    """
    started = time.perf_counter()
    totals: collections.Counter = collections.Counter()
    for result in parse_wikidata(path, langs, min_sitelinks, workers=workers, progress=progress):
        totals.update(result.counts)
        for problem in result.malformed:
            log.warning("wikidata dump %s: skipped %s", path, problem)
        if result.entities:
            writer.add_entities(result.entities)
            writer.add_names(
                (alias, e.id, weight) for e in result.entities
                for alias, weight in (*alias_fn.derive(e.name, alias_fn.is_person(e.types) is not False),
                                      *((a, alias_fn.EXACT) for a in e.aliases))
            )
    seconds = time.perf_counter() - started
    stats = {key: totals[key] for key in ("lines", "items", "entities", "other_entities", "no_label",
                                          "below_min_sitelinks", "skipped")}
    stats.update(
        languages=list(langs), min_sitelinks=min_sitelinks, seconds=round(seconds, 3),
        entities_per_s=round(totals["entities"] / seconds, 1) if seconds else 0.0,
    )
    log.info("wikidata dump %s: %s", path, stats)
    return stats
