"""Visual linking and joint text-face disambiguation on the shared face gallery.

A tiny KB with the gallery people and their namesakes; the face index holds one photo per person
(the other photo is the probe); Alex Lacamoire has no indexed face (an unknown face).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from kb.errors import IndexMismatchError, InputError
from kb.home import DEFAULT_KB, kb_dir, kb_path
from kb.types import Candidate, Document, FaceMention, ImageRef, Link, TextMention
from indexer.face_transformer import calibrate_threshold
from linker.visual import VisualLinker, face_posterior, face_score

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
GALLERY = (DATA / "faces" / "gallery").resolve()
pytestmark = pytest.mark.skipif(not GALLERY.is_dir(), reason="shared face gallery not present")

ENTITIES = [
    {"qid": "Q76", "name": "Barack Obama", "description": "44th president of the United States"},
    {"qid": "Q13133", "name": "Michelle Obama", "description": "lawyer, First Lady of the United States"},
    {"qid": "Q6279", "name": "Joe Biden", "description": "46th president of the United States"},
    {"qid": "Q235349", "name": "Jill Biden", "description": "educator, First Lady of the United States"},
    {"qid": "HB", "name": "Hunter Biden", "description": "American lawyer and businessman"},
    {"qid": "Q357607", "name": "Kit Harington", "description": "English actor"},
    {"qid": "Q461132", "name": "Rose Leslie", "description": "Scottish actress"},
    {"qid": "AL", "name": "Alex Lacamoire", "description": "American music director"},
    {"qid": "Q90", "name": "Paris", "description": "capital of France"},
]
INDEXED = {"Q76": "obama/obama.jpg", "Q6279": "biden/biden.jpg", "Q357607": "kit_harington/john1.jpeg",
           "Q461132": "rose_leslie/img1.jpg"}
PROBE = {"Q76": "obama/obama2.jpg", "Q6279": "biden/biden2.jpg", "AL": "alex_lacamoire/img1.jpg"}


def _build_home(home: Path) -> Path:
    """The default KB of `home` with a hashing text index and a dlib face index; an untrained reranker."""
    import torch

    from indexer.bootstrap import ensure_kb
    from indexer.face_encoders import DlibFaceEncoder
    from indexer.faces import build_face_index
    from indexer.text import HashingTextEncoder
    from linker.features import FEATURES
    from linker.reranker import Reranker, RerankerConfig

    home.mkdir(parents=True, exist_ok=True)
    (home / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ENTITIES))
    kb = ensure_kb(home, DEFAULT_KB, home / "e.jsonl", lambda: HashingTextEncoder(64), kind="flat")
    manifest = home / "faces.jsonl"
    manifest.write_text("".join(json.dumps({"entity": q, "image": str(GALLERY / p)}) + "\n"
                                for q, p in INDEXED.items()))
    build_face_index(kb, DlibFaceEncoder(), manifest, kb_dir(home), progress=False)
    torch.manual_seed(0)
    Reranker(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=FEATURES)).save(home / "models" / "reranker")
    return kb_dir(home)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("visual")
    _build_home(home)
    return home


@pytest.fixture(scope="module")
def visual(home) -> VisualLinker:
    from kb.store import KnowledgeBase

    return VisualLinker.load(KnowledgeBase(kb_path(home)), kb_dir(home))


def _doc(text: str, *images: str | Path) -> Document:
    refs = tuple(ImageRef(f"img{i}", str(p if Path(p).is_absolute() else GALLERY / p)) for i, p in enumerate(images))
    return Document("d", text, refs, (TextMention(0, 5, text[:5]),))


def _biden_link(scores: dict[str, float], text: str = "Biden") -> Link:
    names = {"Q6279": "Joe Biden", "Q235349": "Jill Biden", "HB": "Hunter Biden"}
    cands = tuple(sorted((Candidate(e, names[e], s) for e, s in scores.items()), key=lambda c: -c.score))
    return Link(TextMention(0, 5, text), cands[0].entity, cands[0].score, cands)


# -- pure functions ---------------------------------------------------------------------------


def test_face_posterior_matches_score_and_nil_rule():
    p, nil = face_posterior(np.array([0.4]), 0.6, 0.05)
    assert p[0] == pytest.approx(float(face_score(0.4, 0.6, 0.05)))
    assert p.sum() + nil == pytest.approx(1.0)
    p, nil = face_posterior(np.array([0.65, 0.9]), 0.6, 0.05)
    assert nil > p.max()  # beyond the threshold: NIL wins
    p, nil = face_posterior(np.array([0.59, 0.9]), 0.6, 0.05)
    assert p[0] > nil


def test_calibrate_threshold_separates():
    t = calibrate_threshold([0.3, 0.4, 0.45], [0.7, 0.8, 0.5])
    assert 0.45 < t < 0.5
    with pytest.raises(InputError):
        calibrate_threshold([], [0.5])


# -- visual linking ---------------------------------------------------------------------------


def test_face_linked_to_the_right_entity(visual):
    _, faces, warnings = visual.link(_doc("Paris is nice.", PROBE["Q76"]), [], joint=False)
    assert warnings == [] and len(faces) == 1
    assert isinstance(faces[0].mention, FaceMention) and faces[0].mention.image == "img0"
    assert faces[0].entity == "Q76" and faces[0].score > 0.9
    assert faces[0].candidates[0].features[0] < 0.6  # the distance


def test_unknown_face_is_nil(visual):
    for joint in (False, True):
        _, faces, _ = visual.link(_doc("Lacam", PROBE["AL"]), [], joint=joint)
        assert len(faces) == 1 and faces[0].entity is None


def test_joint_flips_ambiguous_surname_naive_does_not(visual):
    doc = _doc("Biden at the rally.", PROBE["Q6279"])
    text = [_biden_link({"Q235349": 0.3, "HB": 0.1, "Q6279": 0.0})]  # text alone prefers Jill
    naive, faces_n, _ = visual.link(doc, text, joint=False)
    assert naive[0] == text[0] and faces_n[0].entity == "Q6279"
    joint, faces_j, _ = visual.link(doc, text, joint=True)
    assert joint[0].entity == "Q6279" and joint[0].mention == text[0].mention
    assert joint[0].candidates[0].entity == "Q6279" and faces_j[0].entity == "Q6279"
    assert {c.entity for c in joint[0].candidates} == {c.entity for c in text[0].candidates}


def test_joint_keeps_confident_text_and_faceless_mentions(visual):
    doc = _doc("Biden at the rally.", PROBE["Q6279"])
    confident = _biden_link({"Q235349": 8.0, "HB": 0.1, "Q6279": 0.0})
    paris = Link(TextMention(0, 5, "Paris"), "Q90", 1.0, (Candidate("Q90", "Paris", 1.0),))
    out, _, _ = visual.link(doc, [confident, paris], joint=True)
    assert out[0].entity == "Q235349"
    assert out[1] == paris  # no candidate with a face: untouched


def test_joint_unknown_face_does_not_change_text_decision(visual):
    doc = _doc("Biden met someone.", PROBE["AL"])
    text = [_biden_link({"Q235349": 0.3, "HB": 0.1, "Q6279": 0.0})]
    out, faces, _ = visual.link(doc, text, joint=True)
    assert faces[0].entity is None and out[0].entity == "Q235349"


def _variants(tmp_path: Path) -> dict[str, Path]:
    src = Image.open(GALLERY / PROBE["Q6279"])
    out = {}
    for mode in ("L", "CMYK", "RGBA"):
        out[mode] = tmp_path / f"biden-{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
        src.convert(mode).save(out[mode])
    out["corrupt"] = tmp_path / "corrupt.jpg"
    out["corrupt"].write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    out["missing"] = tmp_path / "missing.jpg"
    out["huge"] = tmp_path / "huge.png"
    Image.new("1", (8000, 6500)).save(out["huge"])  # 52 MP, a small file
    return out


def test_robust_images(visual, tmp_path):
    v = _variants(tmp_path)
    text = [_biden_link({"Q235349": 0.3, "HB": 0.1, "Q6279": 0.0})]
    for mode in ("L", "CMYK", "RGBA"):
        _, faces, warnings = visual.link(_doc("Biden", v[mode]), text, joint=False)
        assert warnings == [] and [f.entity for f in faces] == ["Q6279"], mode
    doc = _doc("Biden", v["corrupt"], v["missing"], v["huge"], PROBE["Q6279"])
    out, faces, warnings = visual.link(doc, text, joint=True)
    assert len(warnings) == 3
    for w, what in zip(warnings, ("corrupt", "missing", "huge")):
        assert v[what].name in w
    assert [f.entity for f in faces] == ["Q6279"] and out[0].entity == "Q6279"


def test_mismatched_encoder_refused(visual):
    class Other:
        model_id, dim = "other-model", 128

    with pytest.raises(IndexMismatchError, match="other-model"):
        VisualLinker(visual.kb, visual.index, Other())


# -- pipeline + CLI ---------------------------------------------------------------------------


def test_linker_load_attaches_visual_and_cli_links_text_and_faces(home, tmp_path):
    from cli import app
    from linker.pipeline import Linker

    linker = Linker.load(home)
    assert isinstance(linker.visual, VisualLinker)
    doc = {"id": "1", "text": "Biden at the rally.", "mentions": [{"start": 0, "end": 5}],
           "images": [{"id": "a", "path": str(GALLERY / PROBE["Q6279"])},
                      {"id": "b", "path": str(tmp_path / "gone.jpg")}]}
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    runner = CliRunner()
    for flag in ("--joint", "--no-joint"):
        res = runner.invoke(app, ["link", str(path), "--home", str(home), flag])
        assert res.exit_code == 0, res.output
        rec = json.loads(res.stdout)
        assert [m["surface"] for m in rec["mentions"]] == ["Biden"]
        assert [(f["image"], f["entity"]) for f in rec["faces"]] == [("a", "Q6279")]
        assert len(rec["warnings"]) == 1 and "gone.jpg" in rec["warnings"][0]
    assert rec["mentions"][0]["candidates"]  # --no-joint keeps the text ranking
    assert json.loads(runner.invoke(app, ["link", str(path), "--home", str(home)]).stdout)["mentions"][0]["entity"] == "Q6279"


def test_cli_help():
    from cli import app

    runner = CliRunner()
    for cmd in (["train-faces", "--help"], ["link", "--help"], ["kb", "add-faces", "--help"]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0
    assert "--no-joint" in runner.invoke(app, ["link", "--help"]).output
    assert "--face-model" in runner.invoke(app, ["kb", "add-faces", "--help"]).output


def test_train_faces_cli_and_transformer_index(tmp_path):
    """Train a tiny face transformer, index the KB with it, and link with the matching encoder."""
    from cli import app
    from kb.store import KnowledgeBase
    from indexer.face_transformer import TransformerFaceEncoder
    from indexer.faces import load_face_encoder

    home = tmp_path / "home"
    folder = _build_home(home)
    runner = CliRunner()
    res = runner.invoke(app, ["train-faces", "--gallery", str(GALLERY), "--epochs", "2", "--tiny",
                              "--home", str(home), "--no-progress"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    model_dir = home / "models" / "face-transformer"
    assert report["images"] == 9 and report["identities"] == 5 and (model_dir / "calibration.json").is_file()
    enc = load_face_encoder(model_dir)
    assert isinstance(enc, TransformerFaceEncoder) and enc.model_id == report["model_id"]
    res = runner.invoke(app, ["kb", "add-faces", str(home / "faces.jsonl"), "--rebuild",
                              "--face-model", str(model_dir), "--home", str(home), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads((folder / "faces.json").read_text())["model_id"] == enc.model_id
    vl = VisualLinker.load(KnowledgeBase(folder / "kb.sqlite"), folder, home=home)
    assert vl.encoder.model_id == enc.model_id and math.isclose(vl.threshold, report["threshold"], abs_tol=1e-3)
    _, faces, _ = vl.link(_doc("Paris", PROBE["Q76"]), [], joint=False)
    assert len(faces) == 1 and faces[0].candidates
