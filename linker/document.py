"""Documents in and links out: JSON parsing/validation at the boundary, and output records.

Input: `{"id", "text", "images": [{"id", "path"}]?, "mentions": [{"start", "end"}]?}`.
Output: `{"id", "mentions": [{start, end, surface, entity, score, candidates}], "faces": [...]}`.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from kb.errors import InputError
from kb.files import not_utf8
from kb.types import Document, FaceMention, ImageRef, Link, TextMention

_SURROGATE = re.compile("[\ud800-\udfff]")


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be an integer, got {value!r}")
    return value


def _check_spans(spans: list[TextMention], where: str) -> None:
    """Refuse overlapping spans (a mention inside or across another), naming both."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].end))
    reach = None  # the span seen so far that ends last
    for i in order:
        if reach is not None and spans[i].start < spans[reach].end:
            a, b = sorted((reach, i))
            raise InputError(
                f"{where}: mentions[{b}] span [{spans[b].start}, {spans[b].end}) {spans[b].surface!r} overlaps "
                f"mentions[{a}] span [{spans[a].start}, {spans[a].end}) {spans[a].surface!r}; give disjoint spans"
            )
        if reach is None or spans[i].end > spans[reach].end:
            reach = i


def parse_document(obj, where: str = "document", base: Path | None = None, allow_overlaps: bool = False) -> Document:
    """Validate a JSON object into a `Document`; image paths are resolved against `base`.

    Given spans must lie in the text, hold a non-space character and (unless `allow_overlaps`,
    for gold files that repeat a span with several answers) not overlap.
    """
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    text = obj.get("text")
    if not isinstance(text, str):
        raise InputError(f"{where}: 'text' must be a string, got {text!r:.60}")
    bad = _SURROGATE.search(text)
    if bad:
        raise InputError(f"{where}: 'text' holds an unpaired surrogate at offset {bad.start()} (not valid Unicode)")
    doc_id = str(obj.get("id", ""))
    mentions = None
    if obj.get("mentions") is not None:
        raw = obj["mentions"]
        if not isinstance(raw, list):
            raise InputError(f"{where}: 'mentions' must be a list of {{start, end}}")
        spans = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict):
                raise InputError(f"{where}: mentions[{i}] must be an object with 'start' and 'end'")
            start = _int(m.get("start"), f"{where}: mentions[{i}].start")
            end = _int(m.get("end"), f"{where}: mentions[{i}].end")
            if not 0 <= start < end <= len(text):
                raise InputError(
                    f"{where}: mentions[{i}] span [{start}, {end}) is outside the text (length {len(text)})"
                )
            if not text[start:end].strip():
                raise InputError(
                    f"{where}: mentions[{i}] span [{start}, {end}) {text[start:end]!r} is only whitespace; "
                    "a mention needs a word"
                )
            spans.append(TextMention(start, end, text[start:end]))
        if not allow_overlaps:
            _check_spans(spans, where)
        mentions = tuple(spans)
    images = []
    raw_images = obj.get("images") or []
    if not isinstance(raw_images, list):
        raise InputError(f"{where}: 'images' must be a list of {{id, path}}")
    for i, im in enumerate(raw_images):
        if not isinstance(im, dict) or not isinstance(im.get("path"), str):
            raise InputError(f"{where}: images[{i}] must be an object with a string 'path'")
        path = Path(im["path"]).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        images.append(ImageRef(id=str(im.get("id", i)), path=str(path)))
    return Document(id=doc_id, text=text, images=tuple(images), mentions=mentions)


def iter_jsonl(path: str | os.PathLike, what: str = "input file") -> Iterator[tuple[str, object]]:
    """`(path:line, parsed object)` for each non-blank line of a JSONL file, streamed; a line that
    is not JSON raises `InputError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} {p} does not exist")
    with p.open(encoding="utf-8") as fh:
        try:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield f"{p}:{lineno}", json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InputError(f"{p}:{lineno}: not valid JSON ({exc.msg})") from None
        except UnicodeDecodeError:  # raised by the file's iterator, not by the consumer
            raise not_utf8(p, what) from None


def read_documents(path: str | os.PathLike) -> Iterator[Document]:
    """Documents from a `.json` file (one object or a list) or a `.jsonl` file (streamed)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"input file {p} does not exist")
    base = p.resolve().parent
    with p.open(encoding="utf-8") as fh:
        try:
            head = fh.read(1 << 16).lstrip()
            if not head:
                raise InputError(f"input file {p} is empty")
            whole = not _is_jsonl(p, head)
            text = head + fh.read() if whole else ""
        except UnicodeDecodeError:
            raise not_utf8(p, "input file") from None
        if whole:
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
            for i, o in enumerate(obj if isinstance(obj, list) else [obj]):
                yield parse_document(o, f"{p}[{i}]" if isinstance(obj, list) else str(p), base)
            return
    for where, obj in iter_jsonl(p):
        yield parse_document(obj, where, base)


def _is_jsonl(p: Path, head: str) -> bool:
    """A `.jsonl` file, or a `.json` one whose (stripped) start holds several objects, one a line."""
    return p.suffix == ".jsonl" or (head.startswith("{") and "\n{" in head.rstrip())


def is_single_object(path: str | os.PathLike) -> bool:
    """Whether `path` holds one document as a bare JSON object (not a list, not JSONL): its
    output is then that one object, otherwise a list, even of one document."""
    p = Path(path)
    with p.open(encoding="utf-8", errors="replace") as fh:
        head = fh.read(1 << 16).lstrip()
    return head.startswith("{") and not _is_jsonl(p, head)


def link_record(link: Link, top: int = 5) -> dict:
    """JSON-ready output for one text or face link."""
    m = link.mention
    where = (
        {"start": m.start, "end": m.end, "surface": m.surface}
        if isinstance(m, TextMention)
        else {"image": m.image, "box": list(m.box)}
    )
    return {
        **where,
        "entity": link.entity,
        "name": next((c.name for c in link.candidates if c.entity == link.entity), None),
        "score": round(link.score, 4),
        **({} if link.confidence is None else {"confidence": round(link.confidence, 4)}),
        "candidates": [
            {"entity": c.entity, "name": c.name, "score": round(c.score, 4), "prior": round(c.prior, 4)}
            for c in link.candidates[:top]
        ],
    }


def document_record(doc: Document, links: list[Link], warnings: list[str] = ()) -> dict:
    out = {
        "id": doc.id,
        "mentions": [link_record(l) for l in links if isinstance(l.mention, TextMention)],
    }
    faces = [link_record(l) for l in links if isinstance(l.mention, FaceMention)]
    if faces or doc.images:
        out["faces"] = faces
    if warnings:
        out["warnings"] = list(warnings)
    return out
