"""Wikipedia's own links as labelled data: a dump's paragraphs with their anchors as gold mentions.

Each article's paragraphs become documents in the labelled JSONL format
(`{"id", "text", "mentions": [{"start", "end", "surface", "qid"}], "article"}`) — how BLINK,
REL and ReFinED get their training data, and how a user with a dump trains on their own KB.

Choices, each documented in the output's `stats.json`:
- **Targets** resolve to a KB entity by id, name or `title`, after the dump's redirects and the
  KB's own (up to three hops): `[[Second World War|…]]` → World War II.
- **Anchors whose target is not in the KB** are dropped (`unlinked="drop"`, the default) or
  kept as NIL gold (`"qid": null`, `unlinked="nil"`): editors link what they link, so NIL gold
  from anchors is real but the rest of the text is not labelled.
- **Split by article**, never by paragraph: a stable hash of the title puts each article in
  train, dev or test, so priors and training can come from some articles and evaluation from
  the others (`kb build --dump … --dump-articles train_articles.txt`).
- Paragraphs without a kept mention are not written; nor are links inside templates, tables,
  files and refs (`kb.wikitext.linked_paragraphs`).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kb import wikitext as wt
from kb.dump import iter_pages, parse_dump
from kb.errors import InputError
from kb.files import atomic_path

SPLITS = ("train", "dev", "test")
UNLINKED = ("drop", "nil")


def split_of(title: str, dev_share: float, test_share: float = 0.0) -> str:
    """The split of an article: a stable function of its title (SHA-1), so a rerun, another
    machine or a grown dump puts every article where it was."""
    u = int.from_bytes(hashlib.sha1(title.encode("utf-8")).digest()[:8], "big") / 2**64
    return "test" if u < test_share else "dev" if u < test_share + dev_share else "train"


@dataclass(slots=True)
class LinksChunk:
    """What one worker returns for one chunk of pages."""

    articles: list[tuple[str, list[tuple[str, list[tuple[int, int, str]]]]]] = field(default_factory=list)
    redirects: list[tuple[str, str]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


def parse_links_chunk(chunk: bytes, namespaces: frozenset[str] = wt.DEFAULT_NAMESPACES) -> LinksChunk:
    """The linked paragraphs of each article of a chunk, and its redirects (pure)."""
    out = LinksChunk()
    for title, ns, target, text in iter_pages(chunk):
        out.counts["pages"] += 1
        if not title or ns != "0":
            continue
        if target:
            if target != title:
                out.redirects.append((title, target))
            continue
        if wt.is_disambiguation(title, text):
            continue
        out.counts["articles"] += 1
        out.articles.append((title, wt.linked_paragraphs(text, namespaces)))
    return out


def resolver(names: Mapping[str, str], redirects: Mapping[str, str]):
    """`resolve(title) -> entity id | None`: the title itself, then up to three redirect hops,
    looked up in `names` (id, name or title → entity id)."""

    def resolve(title: str) -> str | None:
        for _ in range(4):
            if title in names:
                return names[title]
            title = redirects.get(title)
            if title is None:
                return None
        return None

    return resolve


def kb_names(kb) -> dict[str, str]:
    """`{id, name, title: entity id}` of every entity of a `KnowledgeBase`; an id wins over another
    entity's name of the same string."""
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    for _, e in kb.iter_entities():
        ids[e.id] = e.id
        for key in (e.name, getattr(e, "title", None)):
            if key:
                names.setdefault(key, e.id)
    names.update(ids)
    return names


def write_labelled(
    dump: str | os.PathLike, kb, out_dir: str | os.PathLike, *, dev_share: float = 0.3,
    test_share: float = 0.0, unlinked: str = "drop", workers: int | None = None, progress: bool = True,
) -> dict:
    """Turn the articles of `dump` into labelled JSONL files `train.jsonl`, `dev.jsonl` (and
    `test.jsonl` when `test_share` > 0) in `out_dir`, with `<split>_articles.txt` (one title per
    line) and `stats.json`; mentions link to entities of `kb` (a `KnowledgeBase`). Each file is
    replaced only when complete. Returns the stats."""
    if unlinked not in UNLINKED:
        raise InputError(f"unknown --unlinked {unlinked!r}: choose one of {', '.join(UNLINKED)}")
    if not (0 <= dev_share <= 1 and 0 <= test_share <= 1 and dev_share + test_share <= 1):
        raise InputError(f"--dev-share {dev_share} and --test-share {test_share} must lie in [0, 1] and sum to at most 1")
    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"output folder {out} does not exist")
    articles: list[tuple[str, list]] = []
    redirects: dict[str, str] = dict(kb.redirects())
    for chunk in parse_dump(dump, workers=workers, progress=progress, parser=parse_links_chunk):
        articles += chunk.articles
        redirects.update(chunk.redirects)
    resolve = resolver(kb_names(kb), redirects)
    splits = [s for s in SPLITS if s == "train" or (s == "dev" and dev_share) or (s == "test" and test_share)]
    stats: dict = {"dump": str(Path(dump).resolve()), "dev_share": dev_share, "test_share": test_share,
                   "unlinked": unlinked, "splits": {s: Counter() for s in splits}}
    lines: dict[str, list[str]] = {s: [] for s in splits}
    titles: dict[str, list[str]] = {s: [] for s in splits}
    for title, paragraphs in articles:
        split = split_of(title, dev_share, test_share)
        titles[split].append(title)
        count = stats["splits"][split]
        count["articles"] += 1
        for n, (text, spans) in enumerate(paragraphs):
            mentions = []
            for start, end, target in spans:
                qid = resolve(target)
                count["links"] += 1
                if qid is None:
                    count["links_not_in_kb"] += 1
                    if unlinked == "drop":
                        continue
                mentions.append({"start": start, "end": end, "surface": text[start:end], "qid": qid, "target": target})
            if any(m["qid"] for m in mentions):
                count["documents"] += 1
                count["mentions"] += len(mentions)
                count["nil_mentions"] += sum(m["qid"] is None for m in mentions)
                lines[split].append(json.dumps({"id": f"{title}#{n}", "article": title, "text": text,
                                                "mentions": mentions}, ensure_ascii=False))
    for split in splits:
        _write_lines(out / f"{split}.jsonl", lines[split])
        _write_lines(out / f"{split}_articles.txt", titles[split])
    stats["splits"] = {s: dict(c) for s, c in stats["splits"].items()}
    _write_lines(out / "stats.json", [json.dumps(stats, indent=2)])
    return stats


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")


def read_titles(path: str | os.PathLike) -> frozenset[str]:
    """The article titles of a file, one per line (as `write_labelled` writes them)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"article list {p} does not exist")
    return frozenset(wt.normalise_title(t) for t in p.read_text(encoding="utf-8").splitlines() if t.strip())
