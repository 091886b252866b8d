import itertools
import json

import numpy as np
import pytest
from PIL import Image

from idx_helpers import GALLERY, make_kb
from indexer.face_encoders import DlibFaceEncoder
from indexer.faces import FaceIndex, build_face_index, load_face_index
from indexer.images import load_image
from kb.errors import IndexMismatchError, InputError

needs_gallery = pytest.mark.skipif(not GALLERY.is_dir(), reason="shared face gallery not present")

# gallery folder -> KB entity id (folders are not exact names, so ids via a manifest or folder rename)
FOLDERS = {"obama": "Q76", "biden": "Q6279", "kit_harington": "Q3323", "rose_leslie": "Q229221",
           "alex_lacamoire": "Q4720"}


@pytest.fixture(scope="module")
def encoder():
    return DlibFaceEncoder()


def test_load_image_modes(tmp_path):
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :30] = (200, 10, 10)
    Image.fromarray(rgb).convert("L").save(tmp_path / "g.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg")
    rgba = np.zeros((40, 60, 4), np.uint8)  # fully transparent -> white
    Image.fromarray(rgba).save(tmp_path / "a.png")
    for name in ("g.png", "c.jpg", "a.png"):
        img = load_image(tmp_path / name)
        assert img.shape == (40, 60, 3) and img.dtype == np.uint8
    assert (load_image(tmp_path / "a.png") == 255).all()
    assert load_image(tmp_path / "c.jpg")[:, :30, 0].mean() > 150


def test_load_image_exif_rotation(tmp_path):
    img = Image.fromarray(np.zeros((40, 60, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (60, 40, 3)


def test_load_image_errors(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8garbage" * 20)
    with pytest.raises(InputError, match="x.jpg"):
        load_image(tmp_path / "x.jpg")
    with pytest.raises(InputError, match="missing.png"):
        load_image(tmp_path / "missing.png")


@needs_gallery
def test_gallery_one_face_each_and_same_person_closer(encoder):
    vecs = {}
    for path in sorted(GALLERY.glob("*/*")):
        image = load_image(path)
        boxes = encoder.detect(image)
        assert len(boxes) == 1, path
        left, top, right, bottom = boxes[0]
        assert 0 <= left < right <= image.shape[1] and 0 <= top < bottom <= image.shape[0]
        vecs[path] = encoder.embed(image, boxes)[0]
    same = [np.linalg.norm(vecs[a] - vecs[b]) for a, b in itertools.combinations(vecs, 2) if a.parent == b.parent]
    diff = [np.linalg.norm(vecs[a] - vecs[b]) for a, b in itertools.combinations(vecs, 2) if a.parent != b.parent]
    assert len(same) == 4 and max(same) < min(diff)
    assert max(same) < 0.6


def _gallery_copy(tmp_path, garbage: bool = True):
    """A gallery with folders named by entity id or name, one unknown person and a corrupt image."""
    src = tmp_path / "gallery"
    for folder, qid in FOLDERS.items():
        dest = src / (qid if folder != "rose_leslie" else "Rose_Leslie")  # by id, and by name
        dest.mkdir(parents=True)
        for f in (GALLERY / folder).iterdir():
            (dest / f.name).write_bytes(f.read_bytes())
    if garbage:
        (src / "Q76" / "x.jpg").write_bytes(b"not an image at all")
        (src / "Nobody Known").mkdir()
        (src / "Nobody Known" / "a.jpg").write_bytes((GALLERY / "obama" / "obama.jpg").read_bytes())
        (src / "Q90").mkdir()
        Image.new("RGB", (300, 300), "gray").save(src / "Q90" / "blank.png")
        two = [Image.open(GALLERY / "obama" / "obama2.jpg").convert("RGB"),
               Image.open(GALLERY / "rose_leslie" / "img2.jpg").convert("RGB")]
        pair = Image.new("RGB", (sum(i.width for i in two), max(i.height for i in two)), "white")
        pair.paste(two[0], (0, 0))
        pair.paste(two[1], (two[0].width, 0))
        pair.save(src / "Q6279" / "pair.jpg")
    return src


@needs_gallery
def test_build_face_index_reports_and_searches(tmp_path, small_kb, encoder):
    src = _gallery_copy(tmp_path)
    report = build_face_index(small_kb, encoder, src, tmp_path / "kb", progress=False)
    assert report["added"] == 9 and report["faces_total"] == 9 and report["entities_total"] == 5
    skipped = report["skipped"]
    assert skipped["unreadable"]["count"] == 1 and "x.jpg" in skipped["unreadable"]["examples"][0]
    assert skipped["unknown_entity"]["count"] == 1 and skipped["no_face"]["count"] == 1
    assert skipped["several_faces"]["count"] == 1
    index = load_face_index(small_kb, tmp_path / "kb")
    obama = small_kb.idx_of("Q76")
    assert index.vectors_for(obama).shape == (2, 128)
    assert index.vectors_for(small_kb.idx_of("Q90")).shape == (0, 128)
    dist, ids = index.search(index.vectors_for(obama)[:1], 3)
    assert ids[0, 0] == ids[0, 1] == obama and dist[0, 0] < 1e-3 and dist[0, 1] < 0.6 < dist[0, 2]
    # rerun: everything already indexed, nothing added twice
    again = build_face_index(small_kb, encoder, src, tmp_path / "kb", progress=False)
    assert again["added"] == 0 and again["faces_total"] == 9
    assert again["skipped"]["already_indexed"]["count"] == 9


@needs_gallery
def test_jsonl_manifest_and_mismatch(tmp_path, small_kb, encoder):
    lines = [{"entity": "Q6279", "image": str(GALLERY / "biden" / "biden.jpg")},
             {"entity": "Joe Biden", "image": str(GALLERY / "biden" / "biden2.jpg")}]
    manifest = tmp_path / "faces.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in lines) + "\n{broken\n")
    report = build_face_index(small_kb, encoder, manifest, tmp_path / "kb", progress=False)
    assert report["added"] == 2 and report["skipped"]["bad_manifest_line"]["count"] == 1
    other = make_kb(tmp_path / "other" / "kb.sqlite", [])
    with pytest.raises(IndexMismatchError, match="kb_checksum"):
        load_face_index(other, tmp_path / "kb")
    with pytest.raises(InputError, match="expected a folder"):
        build_face_index(small_kb, encoder, tmp_path / "nothing.txt", tmp_path / "kb", progress=False)


def test_empty_face_index_search():
    dist, ids = FaceIndex(128).search(np.zeros((2, 128), np.float32), 3)
    assert (ids == -1).all() and np.isinf(dist).all()


# -- faces from the KB's own images (Wikidata P18) --------------------------------------------


def test_commons_key_reads_spaces_and_underscores_alike():
    from indexer.faces import commons_key

    assert commons_key("Barack_Obama  portrait.jpg") == commons_key("barack Obama_portrait.jpg") == "Barack Obama portrait.jpg"
    assert commons_key("Joe Biden.JPG") != commons_key("Joe biden.JPG")  # case matters after the first letter


@pytest.fixture
def p18_kb(tmp_path):
    """A KB whose entities name Commons files (as P18 does), and a folder holding some of them
    under their Commons names, written with spaces or underscores."""
    import dataclasses

    from idx_helpers import ENTITIES

    images = {"Q76": ("Official portrait of Barack Obama.jpg",), "Q6279": ("Joe_Biden_2013.jpg", "Biden 2.jpg"),
              "Q229221": ("Rose Leslie 2014.jpg",), "Q90": ("Paris skyline.png",)}
    kb = make_kb(tmp_path / "kb" / "kb.sqlite",
                 [dataclasses.replace(e, images=images.get(e.id, ())) for e in ENTITIES])
    folder = tmp_path / "commons"
    (folder / "a" / "ab").mkdir(parents=True)  # Commons' hashed layout: subfolders are searched too
    for src, name in ((GALLERY / "obama" / "obama.jpg", "Official_portrait_of_Barack_Obama.jpg"),
                      (GALLERY / "biden" / "biden.jpg", "a/ab/Joe Biden 2013.jpg"),
                      (GALLERY / "kit_harington" / "john1.jpeg", "Kit Harington.jpg")):  # named by no entity
        (folder / name).write_bytes(src.read_bytes())
    (folder / "Paris_skyline.png").write_bytes(b"not an image")
    return kb, folder


@needs_gallery
def test_faces_from_kb_images(tmp_path, p18_kb, encoder):
    from indexer.faces import build_face_index_from_kb

    kb, folder = p18_kb
    report = build_face_index_from_kb(kb, encoder, folder, tmp_path / "kb", progress=False)
    assert report["images"] == 3 and report["added"] == 2 and report["entities_total"] == 2
    assert report["skipped"]["image_not_found"]["count"] == 2  # Biden 2.jpg, Rose Leslie 2014.jpg
    assert "Q229221: Rose Leslie 2014.jpg" in report["skipped"]["image_not_found"]["examples"]
    assert report["skipped"]["unreadable"]["count"] == 1  # Paris_skyline.png
    index = load_face_index(kb, tmp_path / "kb")
    for qid in ("Q76", "Q6279"):
        assert index.vectors_for(kb.idx_of(qid)).shape == (1, 128)
    dist, ids = index.search(index.vectors_for(kb.idx_of("Q76")), 1)
    assert ids[0, 0] == kb.idx_of("Q76") and dist[0, 0] < 1e-3
    again = build_face_index_from_kb(kb, encoder, folder, tmp_path / "kb", progress=False)
    assert again["added"] == 0 and again["skipped"]["already_indexed"]["count"] == 2


def test_faces_from_kb_errors(tmp_path, p18_kb, small_kb):
    from indexer.faces import build_face_index_from_kb

    kb, folder = p18_kb
    with pytest.raises(InputError, match="no such folder"):
        build_face_index_from_kb(kb, None, tmp_path / "missing", tmp_path / "kb", progress=False)
    with pytest.raises(InputError, match="has no entity images"):
        build_face_index_from_kb(small_kb, None, folder, tmp_path / "kb", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"none of the 5 image files the KB names is in .*empty"):
        build_face_index_from_kb(kb, None, tmp_path / "empty", tmp_path / "kb", progress=False)
