"""A self-contained HTML view of linked documents, for people to read the linker's decisions.

Text mentions are highlighted (linked ones with the entity name and score, NIL ones struck
through), with the top candidates in a tooltip; images are embedded as base64 data URIs,
downscaled when large, with the face links drawn as labelled boxes. Box positions are
percentages of the original image size, so they follow the image at any displayed size.
Every piece of the document and record is untrusted and is escaped.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import re
from collections.abc import Iterable
from html import escape
from pathlib import Path

from kb.files import temp_path
from kb.types import Document

log = logging.getLogger(__name__)

MAX_SIDE = 800
MAX_PIXELS = 50_000_000
_QID = re.compile(r"^Q[0-9]+$")

CSS = """
body{font:16px/1.6 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}
h1{font-size:1.2em}section.doc{border-top:1px solid #ccc;padding:1em 0}
.text{white-space:pre-wrap;word-wrap:break-word}
.m{position:relative;border-radius:3px;padding:0 2px;cursor:help}
.m.linked{background:#cde8ff;border-bottom:2px solid #1d6fb8}
.m.nil{background:#eee;border-bottom:2px dashed #999;color:#555}
.m .ent{font-size:.7em;color:#1d6fb8;vertical-align:super;margin-left:2px}
.m.nil .ent{color:#999}
.m .tip{display:none;position:absolute;left:0;top:1.6em;z-index:10;background:#fff;color:#222;
 border:1px solid #888;border-radius:4px;padding:.4em .6em;font-size:.8em;white-space:pre;
 box-shadow:0 2px 6px rgba(0,0,0,.2)}
.m:hover .tip{display:block}
.images{display:flex;flex-wrap:wrap;gap:1em;margin-top:1em}
figure{margin:0}figcaption{font-size:.8em;color:#555}
.frame{position:relative;display:inline-block;line-height:0}
.frame img{max-width:100%;height:auto;display:block}
.box{position:absolute;border:3px solid #e0301e;box-sizing:border-box}
.box.nil{border-color:#999;border-style:dashed}
.box span{position:absolute;left:-3px;bottom:100%;background:#e0301e;color:#fff;font-size:12px;
 line-height:1.3;padding:0 3px;white-space:nowrap}
.box.nil span{background:#999}
.missing{padding:1em;background:#fee;color:#900;font-size:.9em}
.warn{color:#900;font-size:.9em}
"""


def _label(rec: dict) -> str:
    """`Name (id) 93 %` for a linked mention, `NIL 12 %` otherwise: the confidence (the raw
    score where the model has no calibration)."""
    conf, score = rec.get("confidence"), rec.get("score")
    score_s = (f" {conf:.0%}" if isinstance(conf, (int, float))
               else f" {score:.3f}" if isinstance(score, (int, float)) else "")
    if rec.get("entity") is None:
        return f"NIL{score_s}"
    name = rec.get("name") or rec["entity"]
    return f"{name} ({rec['entity']}){score_s}"


def _tooltip(rec: dict) -> str:
    lines = [_label(rec)]
    cands = rec.get("candidates") or []
    if cands:
        lines.append("candidates:")
    for c in cands:
        if isinstance(c, dict):
            score = c.get("score")
            score_s = f"{score:.3f}" if isinstance(score, (int, float)) else "?"
            lines.append(f"  {score_s}  {c.get('name') or ''} ({c.get('entity')})")
    return "\n".join(lines)


def _mention_html(doc_text: str, rec: dict) -> str:
    kind = "nil" if rec.get("entity") is None else "linked"
    surface = doc_text[rec["start"] : rec["end"]]
    tip = _tooltip(rec)
    short = "NIL" if kind == "nil" else str(rec.get("name") or rec["entity"])
    return (
        f'<mark class="m {kind}" title="{escape(tip)}">{escape(surface)}'
        f'<span class="ent">{escape(short)}</span><span class="tip">{escape(tip)}</span></mark>'
    )


def highlight_text(text: str, mentions: Iterable[dict]) -> str:
    """The escaped `text` with each mention record `{start, end, entity, ...}` highlighted.

    Spans outside the text, empty, or overlapping an earlier span are left unhighlighted.
    """
    spans = sorted(
        (m for m in mentions
         if isinstance(m.get("start"), int) and isinstance(m.get("end"), int)
         and 0 <= m["start"] < m["end"] <= len(text)),
        key=lambda m: (m["start"], -m["end"]),
    )
    out, pos = [], 0
    for m in spans:
        if m["start"] < pos:
            continue
        out.append(escape(text[pos : m["start"]]))
        out.append(_mention_html(text, m))
        pos = m["end"]
    out.append(escape(text[pos:]))
    return "".join(out)


def image_data_uri(path: str, max_side: int = MAX_SIDE, max_pixels: float = MAX_PIXELS) -> tuple[str, int, int]:
    """`(data URI, original width, original height)` of an image, downscaled to `max_side`.

    Raises `OSError`/`ValueError` for a missing, unreadable or oversized image.
    """
    from PIL import Image

    from indexer.images import DECODE_BUDGET

    with Image.open(path) as im:
        width, height = im.size
        if width * height > max_pixels:
            raise ValueError(f"{width}x{height} pixels is more than the limit of {int(max_pixels)}")
        im.draft("RGB", (max_side, max_side))  # fast JPEG downscale while decoding
        with DECODE_BUDGET.reserve(im.size[0] * im.size[1]):  # a PNG is decoded whole
            im = im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB")
            im.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        if im.mode == "RGBA":
            im.save(buf, "PNG", optimize=True)
            mime = "image/png"
        else:
            im.save(buf, "JPEG", quality=85)
            mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}", width, height


def _box_html(face: dict, width: int, height: int) -> str:
    box = face.get("box")
    if not (isinstance(box, (list, tuple)) and len(box) == 4
            and all(isinstance(v, (int, float)) for v in box)) or width <= 0 or height <= 0:
        return ""
    left, top, right, bottom = box
    left, right = max(0, min(left, width)), max(0, min(right, width))
    top, bottom = max(0, min(top, height)), max(0, min(bottom, height))
    if right <= left or bottom <= top:
        return ""
    style = (
        f"left:{100 * left / width:.3f}%;top:{100 * top / height:.3f}%;"
        f"width:{100 * (right - left) / width:.3f}%;height:{100 * (bottom - top) / height:.3f}%"
    )
    kind = "nil" if face.get("entity") is None else "linked"
    return (
        f'<div class="box {kind}" style="{style}" title="{escape(_tooltip(face))}">'
        f"<span>{escape(_label(face))}</span></div>"
    )


def _image_html(image_id: str, path: str, faces: list[dict]) -> str:
    caption = f"<figcaption>{escape(image_id)}</figcaption>"
    try:
        uri, width, height = image_data_uri(path)
    except (OSError, ValueError) as exc:
        log.warning("cannot show image %s: %s", image_id, exc)
        return f'<figure><div class="missing">image not shown: {escape(str(exc))}</div>{caption}</figure>'
    boxes = "".join(_box_html(f, width, height) for f in faces)
    return (
        f'<figure><div class="frame"><img src="{uri}" alt="{escape(image_id)}" '
        f'data-width="{width}" data-height="{height}">{boxes}</div>{caption}</figure>'
    )


def document_section(doc: Document, record: dict) -> str:
    """The `<section>` for one document: highlighted text, then images with face boxes."""
    parts = [f'<section class="doc"><h1>{escape(doc.id or "document")}</h1>']
    parts.append(f'<div class="text">{highlight_text(doc.text, record.get("mentions") or [])}</div>')
    for w in record.get("warnings") or []:
        parts.append(f'<p class="warn">{escape(str(w))}</p>')
    if doc.images:
        faces = [f for f in record.get("faces") or [] if isinstance(f, dict)]
        parts.append('<div class="images">')
        for im in doc.images:
            parts.append(_image_html(im.id, im.path, [f for f in faces if str(f.get("image")) == im.id]))
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _head(title: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body>"
    )


_TAIL = "</body></html>\n"


def _page(title: str, body: str) -> str:
    return _head(title) + body + _TAIL


def render_html(doc: Document, record: dict) -> str:
    """A self-contained HTML page showing one linked document (`record` from `document_record`)."""
    return _page(f"mmel: {doc.id}" if doc.id else "mmel", document_section(doc, record))


def render_html_many(pairs: Iterable[tuple[Document, dict]]) -> str:
    """One HTML page for many `(document, record)` pairs."""
    return _page("mmel", "".join(document_section(d, r) for d, r in pairs))


class HtmlView:
    """An HTML page written document by document (for `mmel link --html`), so memory stays flat.

    Written to a unique temporary file beside `path` and renamed on a clean exit::

        with HtmlView(path) as view:
            view.add(doc, record)
    """

    def __init__(self, path: str | os.PathLike, title: str = "mmel"):
        self.path = Path(path)
        self._tmp = temp_path(self.path)
        self._title = title
        self._fh = None
        self.count = 0

    def __enter__(self) -> HtmlView:
        self._fh = self._tmp.open("w", encoding="utf-8")
        self._fh.write(_head(self._title))
        return self

    def add(self, doc: Document, record: dict) -> None:
        self._fh.write(document_section(doc, record))
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._fh.write(_TAIL)
        self._fh.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
