"""Stream a MediaWiki pages-articles dump into a `KBWriter`, parsing pages on all cores.

The main process reads the (optionally bz2/gzip-compressed) XML in fixed-size blocks and cuts
them at `</page>` boundaries into raw byte chunks; it never builds a tree and never holds more
than a bounded number of chunks, so memory stays flat however large the dump is. Worker
processes decode each chunk, split it into pages and parse their wikitext (`kb.wikitext`):
links with anchors, the first paragraph, redirects and disambiguation pages. Results come back
per chunk, in order, and are written to the KB; anchor counts are merged and flushed in
bounded batches.

Only namespace-0 pages that are neither redirects nor disambiguation pages become entities;
links are counted from those articles only. For link probability (keyphraseness) each article
also counts, once per key, the capitalised spans of its plain text (`kb.spans`) and its anchors.
"""
from __future__ import annotations

import bz2
import collections
import functools
import gc
import gzip
import logging
import multiprocessing
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from kb import wikitext as wt
from kb.aliases import base_name
from kb.errors import InputError
from kb.normalize import mention_key
from kb.spans import surfaces
from kb.store import KBWriter
from kb.types import Entity

log = logging.getLogger(__name__)

BLOCK_BYTES = 4 << 20  # bytes read per step; one chunk of pages goes to one worker
FLUSH_PAIRS = 500_000  # distinct (anchor, target) pairs held before flushing to the writer
_HEADER_BYTES = 1 << 16

_NAMESPACE = re.compile(rb'<namespace key="(-?\d+)"[^>]*>([^<]+)</namespace>')
_TITLE = re.compile(r"<title>([^<]*)</title>")
_NS = re.compile(r"<ns>\s*(-?\d+)\s*</ns>")
_REDIRECT_TAG = re.compile(r'<redirect\s+title="([^"]*)"')


@dataclass(slots=True)
class ChunkResult:
    """What one worker returns for one chunk of pages."""

    entities: list[tuple[str, str]] = field(default_factory=list)  # (title, description)
    redirects: list[tuple[str, str]] = field(default_factory=list)  # (source, target)
    anchors: collections.Counter = field(default_factory=collections.Counter)
    counts: collections.Counter = field(default_factory=collections.Counter)
    linked_in: collections.Counter = field(default_factory=collections.Counter)  # key -> articles linking it
    occurs_in: collections.Counter = field(default_factory=collections.Counter)  # key -> articles with it
    malformed: list[str] = field(default_factory=list)  # first few problems, for the log


def open_dump(path: str | os.PathLike) -> BinaryIO:
    """Open a dump for binary reading; compression is detected from magic bytes, not the name."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"dump {p} does not exist" if not p.exists() else f"dump {p} is not a file")
    with p.open("rb") as fh:
        magic = fh.read(3)
    if magic == b"BZh":
        return bz2.open(p, "rb")
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(p, "rb")
    return p.open("rb")


def _unescape(text: str) -> str:
    """XML character entities of a dump (`&lt; &gt; &quot; &#039; &amp;`); `&amp;` last."""
    if "&" not in text:
        return text
    return (
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
        .replace("&#039;", "'").replace("&#39;", "'").replace("&amp;", "&")
    )


def _page_text(page: str) -> str:
    start = page.rfind("<text")
    if start < 0:
        return ""
    close = page.find(">", start)
    if close < 0 or page[close - 1] == "/":
        return ""
    end = page.find("</text>", close)
    return _unescape(page[close + 1 : end if end >= 0 else len(page)])


def iter_pages(chunk: bytes) -> Iterator[tuple[str, str | None, str, str]]:
    """`(title, namespace, redirect target or "", wikitext)` of each complete `<page>` of a
    chunk; title "" or namespace None for a malformed page."""
    text_all = chunk.decode("utf-8", errors="replace")
    pos = text_all.find("<page>")
    while pos >= 0:
        end = text_all.find("</page>", pos)
        if end < 0:
            break
        page = text_all[pos : end + 7]
        pos = text_all.find("<page>", end)
        head = page[: page.find("<revision")] if "<revision" in page else page
        title_m, ns_m, redirect_m = _TITLE.search(head), _NS.search(head), _REDIRECT_TAG.search(head)
        title = wt.normalise_title(_unescape(title_m.group(1))) if title_m else ""
        text = _page_text(page)
        target = wt.normalise_title(_unescape(redirect_m.group(1))) if redirect_m else wt.redirect_target(text)
        yield title, ns_m.group(1) if ns_m else None, target or "", text


def parse_chunk(chunk: bytes, namespaces: frozenset[str] = wt.DEFAULT_NAMESPACES,
                only: frozenset[str] | None = None) -> ChunkResult:
    """Parse the complete `<page>` elements in `chunk` (pure: bytes in, results out). `only`: the
    titles of the articles whose links count (anchors, link probability); every article still
    becomes an entity. None: all of them."""
    out = ChunkResult()
    counts = out.counts
    anchors = out.anchors
    for title, ns, target, text in iter_pages(chunk):
        counts["pages"] += 1
        if not title or ns is None:
            counts["skipped"] += 1
            if len(out.malformed) < 5:
                out.malformed.append(f"page {title or '?'!r}: missing {'<title>' if not title else '<ns>'}")
            continue
        if ns != "0":
            counts["other_namespace"] += 1
            continue
        if target:
            counts["redirects"] += 1
            if target != title:
                out.redirects.append((title, target))
            continue
        if wt.is_disambiguation(title, text):
            counts["disambiguation"] += 1
            continue
        counts["articles"] += 1
        out.entities.append((title, wt.first_paragraph(text, namespaces=namespaces)))
        if only is not None and title not in only:
            counts["articles_links_skipped"] += 1
            continue
        links = wt.link_counts(text, namespaces)
        anchors.update(links)
        counts["links"] += sum(links.values())
        linked, occurring = occurrence_keys(text, links, namespaces)
        out.linked_in.update(linked)
        out.occurs_in.update(occurring)
    return out


def occurrence_keys(
    wikitext: str, links: dict[tuple[str, str], int], namespaces: frozenset[str] = wt.DEFAULT_NAMESPACES
) -> tuple[set[str], set[str]]:
    """(mention keys the article links, mention keys that occur in it as a capitalised span or
    an anchor): the per-article counts behind link probability."""
    linked = {k for anchor, _ in links if (k := mention_key(anchor))}
    occurring = {k for surface in set(surfaces(wt.plain_text(wikitext, namespaces))) if (k := mention_key(surface))}
    return linked, occurring | linked


def _namespaces(header: bytes) -> frozenset[str]:
    names = {
        m.group(2).decode("utf-8", "replace").strip().lower()
        for m in _NAMESPACE.finditer(header)
        if m.group(1) != b"0"
    }
    return wt.DEFAULT_NAMESPACES | frozenset(names)


def iter_chunks(fh: BinaryIO, name: str, block: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """`(offset, bytes)` chunks of whole `<page>` elements; the first item is the header.

    `offset` counts uncompressed bytes. Raises InputError if the stream is not a MediaWiki
    export, is a truncated or corrupt compressed file, or ends inside a page.
    """
    offset = 0
    consumed = 0  # uncompressed bytes read so far
    raw = getattr(fh, "fileobj", None) or getattr(fh, "_fp", None)  # the compressed file, if any

    def read() -> bytes:
        """Up to `block` bytes, read in steps of 1 MiB so that an error's position is exact to 1 MiB."""
        nonlocal consumed
        parts: list[bytes] = []
        try:
            while (want := block - sum(map(len, parts))) > 0 and (part := fh.read(min(want, 1 << 20))):
                parts.append(part)
                consumed += len(part)
        except (EOFError, OSError) as exc:
            at = _tell(fh, raw) if raw is not None else None
            where = f" at compressed byte {at:,}" if at is not None else ""
            raise InputError(
                f"dump {name} is truncated or corrupt{where}, after {consumed:,} readable uncompressed "
                f"bytes ({exc})"
            ) from None
        return b"".join(parts)

    data = read()
    while b"<page>" not in data and len(data) < _HEADER_BYTES and (more := read()):
        data += more
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<") or b"<mediawiki" not in head:
        raise InputError(
            f"dump {name} is not a MediaWiki export (no <mediawiki> root element in its first "
            f"bytes): expected a pages-articles .xml, .xml.bz2 or .xml.gz file"
        )
    cut = data.find(b"<page>")
    cut = len(data) if cut < 0 else cut
    yield 0, data[:cut]
    offset, rest = cut, data[cut:]
    while True:
        data = read()
        buf = rest + data if rest else data
        cut = buf.rfind(b"</page>")
        if cut >= 0:
            cut += 7
            yield offset, buf[:cut]
            offset += cut
            buf = buf[cut:]
        rest = buf
        if not data:
            if b"<page>" in rest:
                raise InputError(
                    f"dump {name} ends inside a page at uncompressed byte {offset:,}: truncated file"
                )
            return


def _parse_task(args: tuple) -> object:
    parser, chunk, namespaces = args
    return parser(chunk, namespaces)


def map_in_order(fn, tasks, workers: int, *, freeze: bool = False) -> Iterator:
    """`fn(task)` of each task, in order: in this process for one worker, else by `workers`
    forked processes (`fn` picklable) with at most `2 × workers` tasks in flight, so memory
    does not depend on how many tasks there are. `freeze`: fork after `gc.freeze()`, so the
    workers' collector skips what they inherit (and its pages stay shared)."""
    if workers == 1:
        for task in tasks:
            yield fn(task)
        return
    ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    if freeze:
        gc.freeze()
    try:
        pool = ctx.Pool(workers)
    finally:
        if freeze:
            gc.unfreeze()
    with pool:
        pending: collections.deque = collections.deque()
        for task in tasks:
            pending.append(pool.apply_async(fn, (task,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


class ByteProgress:
    """A progress bar over the bytes of a dump file read through `fh`, with a running count of
    `what` (a key of each result's `.counts`) and its rate; call it with each parsed result."""

    def __init__(self, fh: BinaryIO, path: str | os.PathLike, desc: str, what: str, rate_key: str, enabled: bool):
        self.fh, self.raw = fh, getattr(fh, "fileobj", None) or getattr(fh, "_fp", None)
        self.what, self.rate_key = what, rate_key
        self.bar = tqdm(total=Path(path).stat().st_size, desc=desc, unit="B", unit_scale=True, disable=not enabled)
        self.count = 0
        self.started = time.perf_counter()

    def __call__(self, result):
        self.count += result.counts[self.what]
        position = _tell(self.fh, self.raw)
        if position is not None:
            self.bar.update(position - self.bar.n)
        rate = self.count / max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix(**{self.what: self.count, self.rate_key: f"{rate:,.0f}"})
        return result

    def close(self) -> None:
        self.bar.close()


def parse_dump(
    path: str | os.PathLike,
    workers: int | None = None,
    progress: bool = True,
    block: int | None = None,
    parser=None,
) -> Iterator:
    """Parsed chunks of a dump, in dump order, parsed by `workers` processes: `parser(chunk,
    namespaces)` of each chunk of whole pages (a picklable function; None: `parse_chunk`,
    whose results have `.counts["pages"]` for the progress bar, as every parser's must).

    At most `2 × workers` chunks are in flight, so memory does not depend on dump size.
    """
    workers = max(1, workers or os.cpu_count() or 1)
    parser = parser or parse_chunk
    fh = open_dump(path)
    tick = ByteProgress(fh, path, "dump", "pages", "pages_s", progress)
    chunks = iter_chunks(fh, str(path), block or BLOCK_BYTES)
    try:
        _, header = next(chunks)
        namespaces = _namespaces(header)
        tasks = ((parser, chunk, namespaces) for _, chunk in chunks)
        for result in map_in_order(_parse_task, tasks, workers):
            yield tick(result)
    finally:
        tick.close()
        fh.close()


def _tell(fh: BinaryIO, raw) -> int | None:
    try:
        return (raw or fh).tell()
    except (OSError, ValueError, AttributeError):
        return None


def ingest_dump(
    path: str | os.PathLike,
    writer: KBWriter,
    workers: int | None = None,
    progress: bool = True,
    only: frozenset[str] | None = None,
    add_articles: bool = True,
) -> dict:
    """Stream the dump at `path` into `writer`; returns counts and throughput. `only`: the
    article titles whose links count (see `parse_chunk`; e.g. the training articles of a split,
    so that evaluation articles leave no trace in the priors). `add_articles=False`: the KB's
    entities come from elsewhere (an entity list, Wikidata); articles are not added, their
    anchors and redirects attach to the entities whose id, `title` or name is the article's
    title, and the others are counted (`dump_articles_not_in_kb` of the build statistics).

    Articles become entities (id = name = normalised title, description = first paragraph),
    with their title and parenthesis-free base title as names; redirects are recorded and their
    titles become names of their targets; `(anchor, target)` link counts are flushed to the
    writer in batches of at most `FLUSH_PAIRS` distinct pairs.
    """
    started = time.perf_counter()
    totals: collections.Counter = collections.Counter()
    anchors: collections.Counter = collections.Counter()
    linked_in: collections.Counter = collections.Counter()
    occurs_in: collections.Counter = collections.Counter()
    size = Path(path).stat().st_size if Path(path).is_file() else 0
    parser = parse_chunk if only is None else functools.partial(parse_chunk, only=only)
    for result in parse_dump(path, workers=workers, progress=progress, parser=parser):
        totals.update(result.counts)
        for problem in result.malformed:
            log.warning("dump %s: skipped %s", path, problem)
        if result.entities:
            if add_articles:
                writer.add_entities(Entity(id=t, name=t, description=d, title=t) for t, d in result.entities)
            else:
                writer.add_dump_articles(t for t, _ in result.entities)
            writer.add_names(
                row for t, _ in result.entities for row in ((t, t, 1.0), (base_name(t), t, 1.0))
            )
        if result.redirects:
            writer.add_redirects(result.redirects)
            writer.add_names((source, target, 1.0) for source, target in result.redirects)
        anchors.update(result.anchors)
        linked_in.update(result.linked_in)
        occurs_in.update(result.occurs_in)
        if len(anchors) >= FLUSH_PAIRS:
            writer.add_anchor_counts(anchors)
            anchors.clear()
        if len(occurs_in) >= FLUSH_PAIRS:
            writer.add_occurrences({k: (linked_in[k], n) for k, n in occurs_in.items()})
            linked_in.clear()
            occurs_in.clear()
    if anchors:
        writer.add_anchor_counts(anchors)
    if occurs_in:
        writer.add_occurrences({k: (linked_in[k], n) for k, n in occurs_in.items()})
    seconds = time.perf_counter() - started
    stats = {
        key: totals[key]
        for key in ("pages", "articles", "redirects", "disambiguation", "other_namespace", "skipped", "links")
    }
    if only is not None:
        stats["articles_links_skipped"] = totals["articles_links_skipped"]
    stats.update(
        seconds=round(seconds, 3),
        pages_per_s=round(totals["pages"] / seconds, 1) if seconds else 0.0,
        mb_per_s=round(size / 2**20 / seconds, 2) if seconds else 0.0,
    )
    log.info("dump %s: %s", path, stats)
    return stats
