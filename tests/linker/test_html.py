"""HTML view: escaping of untrusted text, mention highlights, images with face boxes, and a
headless-Chromium screenshot that is not blank (skipped when Chromium is absent)."""
from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageStat

from kb.types import Document, ImageRef
from linker.fronts.html import highlight_text, image_data_uri, render_html, render_html_many


class _Collect(HTMLParser):
    """Tags and text of a page, to check its structure without regexes over raw HTML."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.scripts += tag == "script"


def _parse(page: str) -> _Collect:
    p = _Collect()
    p.feed(page)
    return p


def _record(text: str) -> dict:
    return {
        "id": "d1",
        "mentions": [
            {"start": 0, "end": 5, "surface": text[0:5], "entity": "Q76", "name": "Barack <b>Obama</b>",
             "score": 0.9, "candidates": [{"entity": "Q76", "name": "Barack <b>Obama</b>", "score": 0.9, "prior": 0.8},
                                          {"entity": "Q13133", "name": "Michelle Obama", "score": 0.1, "prior": 0.2}]},
            {"start": 14, "end": 19, "surface": text[14:19], "entity": None, "name": None, "score": -1.0,
             "candidates": []},
        ],
    }


def test_text_is_escaped_and_mentions_highlighted():
    text = "Obama met <script>alert(1)</script> & \"friends\" in Paris"
    rec = _record(text)
    rec["mentions"][1].update(start=len(text) - 5, end=len(text))
    page = render_html(Document(id="<i>d1</i>", text=text), rec)
    parsed = _parse(page)
    assert parsed.scripts == 0
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>Obama</b>" not in page and "&lt;b&gt;Obama&lt;/b&gt;" in page
    assert "<i>d1</i>" not in page
    marks = [a for t, a in parsed.tags if t == "mark"]
    assert [m["class"] for m in marks] == ["m linked", "m nil"]
    assert "Q76" in marks[0]["title"] and "Michelle Obama" in marks[0]["title"]
    assert marks[1]["title"].startswith("NIL")


def test_highlight_skips_bad_and_overlapping_spans_and_keeps_all_text():
    text = "abcdefghij"
    mentions = [{"start": 0, "end": 4, "entity": "A"}, {"start": 2, "end": 6, "entity": "B"},
                {"start": 8, "end": 99, "entity": "C"}, {"start": 5, "end": 5, "entity": "D"},
                {"start": "x", "end": 3, "entity": "E"}]
    out = highlight_text(text, mentions)
    assert out.count("<mark") == 1
    # every character of the text survives exactly once outside the tooltips
    visible = re.sub(r'<span class="(ent|tip)">.*?</span>', "", out)
    assert re.sub(r"<[^>]+>", "", visible) == text


def _photo(path, size=(1600, 1200)):
    im = Image.new("RGB", size, (240, 240, 230))
    d = ImageDraw.Draw(im)
    d.ellipse((400, 300, 800, 800), fill=(200, 150, 120))
    im.save(path, "JPEG")
    return path


def test_image_embedded_downscaled_with_face_boxes(tmp_path):
    path = _photo(tmp_path / "p.jpg")
    uri, w, h = image_data_uri(str(path), max_side=400)
    assert (w, h) == (1600, 1200)
    small = Image.open(io.BytesIO(base64.b64decode(uri.partition(",")[2])))
    assert max(small.size) == 400
    doc = Document(id="d", text="Obama", images=(ImageRef("img0", str(path)), ImageRef("gone", str(tmp_path / "no.jpg"))))
    rec = {"id": "d", "mentions": [], "faces": [
        {"image": "img0", "box": [400, 300, 800, 900], "entity": "Q76", "name": "Barack Obama", "score": 0.7, "candidates": []},
        {"image": "img0", "box": [0, 0, 160, 120], "entity": None, "name": None, "score": 0.1, "candidates": []},
        {"image": "img0", "box": "bad", "entity": None, "score": 0.1},
    ]}
    page = render_html(doc, rec)
    boxes = [a for t, a in _parse(page).tags if t == "div" and a.get("class", "").startswith("box")]
    assert len(boxes) == 2
    assert boxes[0]["style"].startswith("left:25.000%;top:25.000%;width:25.000%;height:50.000%")
    assert boxes[1]["class"] == "box nil"
    assert "Barack Obama (Q76) 0.700" in page
    assert 'class="missing"' in page  # the missing image is reported, not fatal


def test_render_many_has_one_section_per_document():
    docs = [(Document(id=str(i), text=f"doc {i}"), {"id": str(i), "mentions": []}) for i in range(3)]
    page = render_html_many(docs)
    assert sum(1 for t, a in _parse(page).tags if t == "section") == 3


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_chromium_screenshot_not_blank(tmp_path):
    text = "Barack Obama visited Paris with Michelle Obama."
    path = _photo(tmp_path / "p.jpg")
    rec = {"id": "d", "mentions": [
        {"start": 0, "end": 12, "entity": "Q76", "name": "Barack Obama", "score": 0.9, "candidates": []},
        {"start": 21, "end": 26, "entity": None, "score": -0.2, "candidates": []}],
        "faces": [{"image": "img0", "box": [400, 300, 800, 800], "entity": "Q76", "name": "Barack Obama", "score": 0.8}]}
    page = tmp_path / "view.html"
    page.write_text(render_html(Document("d", text, (ImageRef("img0", str(path)),)), rec), encoding="utf-8")
    png = tmp_path / "shot.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1000,700",
           page.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    assert png.is_file(), "chromium wrote no screenshot"
    shot = Image.open(png).convert("RGB")
    assert shot.size == (1000, 700)
    assert max(ImageStat.Stat(shot).var) > 100  # not a blank page
    # the red face box is drawn: some pixels are the box colour (#e0301e)
    px = np.asarray(shot).astype(int)
    reds = ((px[..., 0] > 200) & (px[..., 1] < 80) & (px[..., 2] < 60)).sum()
    assert reds > 200


def test_html_view_streams_documents_and_is_atomic(tmp_path):
    from linker.fronts.html import HtmlView

    out = tmp_path / "view.html"
    with HtmlView(out) as view:
        for i in range(3):
            view.add(Document(id=str(i), text=f"doc <{i}>"), {"id": str(i), "mentions": []})
    page = out.read_text(encoding="utf-8")
    assert view.count == 3 and page.endswith("</html>\n") and "doc &lt;2&gt;" in page
    assert sum(1 for t, a in _parse(page).tags if t == "section") == 3
    with pytest.raises(RuntimeError):
        with HtmlView(tmp_path / "broken.html") as view:
            view.add(Document(id="x", text="x"), {"id": "x"})
            raise RuntimeError("killed")
    assert list(tmp_path.glob("broken*")) == []


def _link_has_html() -> bool:
    from typer.testing import CliRunner

    from cli import app

    return "--html" in CliRunner().invoke(app, ["link", "--help"], env={"COLUMNS": "200"}).output


@pytest.mark.skipif(not _link_has_html(), reason="`mmel link --html` is not wired yet")
def test_link_cli_writes_html_view(tmp_path):
    import json

    from typer.testing import CliRunner

    from cli import app
    from linker.features import FEATURES
    from linker.reranker import Reranker, RerankerConfig
    from tiny import build_tiny_index

    home = tmp_path / "home"
    build_tiny_index(home)
    Reranker(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=FEATURES)).save(tmp_path / "rr")
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps(d) + "\n" for d in [
        {"id": "a", "text": "Obama <b>met</b> Merkel.", "mentions": [{"start": 0, "end": 5}]},
        {"id": "b", "text": "Paris and Berlin."}]), encoding="utf-8")
    out, view = tmp_path / "out.jsonl", tmp_path / "view.html"
    r = CliRunner().invoke(app, ["link", str(docs), "--home", str(home), "--model", str(tmp_path / "rr"),
                                 "--out", str(out), "--html", str(view)])
    assert r.exit_code == 0, r.output
    page = view.read_text(encoding="utf-8")
    assert len(out.read_text().splitlines()) == 2
    assert sum(1 for t, a in _parse(page).tags if t == "section") == 2
    assert "&lt;b&gt;met" in page and page.count('<mark class="m ') >= 3
