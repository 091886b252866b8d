"""Naive vs joint (OT) multimodal linking on a small constructed set of text + face documents.

The set is built at run time from the 9-photo face gallery (5 people) and the WikiMEL KB:

- KB: all WikiMEL entities (which include Barack/Michelle Obama, Joe/Jill Biden, Kit Harington,
  Rose Leslie and 20 other Leslies) plus a few confusable namesakes written here (Hunter Biden,
  Malia Obama, Alex Harington, ...) and Alex Lacamoire (not in WikiMEL).
- Face index: one photo per person with two photos (Obama, Biden, Harington, Leslie); the other
  photo is the probe. Alex Lacamoire (one photo) is *not* indexed: his face is an unknown face
  (NIL), as is skimage's astronaut (Eileen Collins, not in the KB).
- Documents of three caption kinds, each with four versions of its photo (original, downscaled,
  blurred, grey: the face distance gets borderline):
  `consistent`: the text names the person shown, by surname ("Biden at the rally") or full name;
  `nil_face`: the face shown is not in the face index (Alex Lacamoire, an astronaut);
  `misleading`: the text names someone else than the face shown, a namesake (text "Hunter Biden",
  photo Joe Biden; "Biden, the school teacher" (Jill Biden) with a photo of Joe Biden) or another
  person ("Rose Leslie" with a photo of Kit Harington). The gold text entity is the one the text
  names, the gold face entity the person shown: here the joint step can only do harm.
  The report counts, per kind, the decisions the joint step fixed (naive wrong, joint right) and
  broke (naive right, joint wrong), beside F1 per kind and mode.

Text: the real `Linker` with a hashing text index (no MiniLM: too slow on a loaded 2-core box)
and a reranker trained here on WikiMEL train (a few hundred documents). Faces: dlib, and
optionally the paper's face transformer trained on the gallery (`--face-transformer`; it is
trained on the very photos used as index and probes, so its numbers are optimistic).

Writes `benchmarks/results/joint.json` and `joint.md`. A small constructed set: read the numbers
as a sanity check of the mechanism, not as a benchmark of the paper's kind.

    python benchmarks/joint.py [--train-docs 400] [--face-transformer]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATA, WORK, machine, results_dir, write_json  # noqa: E402
from kb.home import DEFAULT_KB  # noqa: E402
from linker.training.evaluate import Metrics, MentionRecord, mention_record  # noqa: E402

log = logging.getLogger("benchmarks.joint")
GALLERY = (DATA / "faces" / "gallery").resolve()
OUT = WORK / "joint"

# person folder -> (KB id, name); index photo, probe photo (None: not indexed, an unknown face)
PEOPLE = {
    "obama": ("Q76", "Barack Obama", "obama.jpg", "obama2.jpg"),
    "biden": ("Q6279", "Joe Biden", "biden.jpg", "biden2.jpg"),
    "kit_harington": ("Q357607", "Kit Harington", "john1.jpeg", "john2.jpeg"),
    "rose_leslie": ("Q461132", "Rose Leslie", "img1.jpg", "img2.jpg"),
    "alex_lacamoire": ("Alex Lacamoire", "Alex Lacamoire", None, "img1.jpg"),
}
EXTRA_ENTITIES = [
    {"qid": "Hunter Biden", "name": "Hunter Biden", "description": "Sex: male. Birth: 1970, Wilmington. Occupation: lawyer, businessman, lobbyist. Father: Joe Biden."},
    {"qid": "Beau Biden", "name": "Beau Biden", "description": "Sex: male. Birth: 1969, Wilmington. Death: 2015, Bethesda. Occupation: lawyer, politician, Attorney General of Delaware."},
    {"qid": "Ashley Biden", "name": "Ashley Biden", "description": "Sex: female. Birth: 1981, Wilmington. Occupation: social worker, activist, fashion designer."},
    {"qid": "Malia Obama", "name": "Malia Obama", "description": "Sex: female. Birth: 1998, Chicago. Occupation: screenwriter, film director. Father: Barack Obama."},
    {"qid": "Maya Soetoro-Ng", "name": "Maya Soetoro-Ng", "description": "Sex: female. Birth: 1970, Jakarta. Occupation: academic, teacher. Half-sister of Barack Obama."},
    {"qid": "Alex Harington", "name": "Alex Harington", "description": "Sex: male. Birth: 1955. Occupation: stage designer, theatre director. Languages: English."},
    {"qid": "John Harington", "name": "John Harington", "description": "Sex: male. Birth: 1560, Kelston. Death: 1612. Occupation: courtier, writer, inventor of the flush toilet."},
    {"qid": "Alex Lacamoire", "name": "Alex Lacamoire", "description": "Sex: male. Birth: 1975, Los Angeles. Occupation: music director, orchestrator, composer. Work: Hamilton, In the Heights."},
    {"qid": "Lucia Lacamoire", "name": "Lucia Lacamoire", "description": "Sex: female. Birth: 1980, Miami. Occupation: costume designer."},
]

CONSISTENT, NIL_FACE, MISLEADING = "consistent", "nil_face", "misleading"
KINDS = (CONSISTENT, NIL_FACE, MISLEADING)

# (text, mention surface, gold text entity, image person folder or special, gold face entity, kind)
# gold text entity: the one the text names; gold face entity: the person shown, None when the
# face is not in the KB's face index (NIL).
DOCS = [
    ("Biden at the rally in Scranton on Saturday.", "Biden", "Q6279", "biden", "Q6279", CONSISTENT),
    ("Biden speaks to reporters after the meeting.", "Biden", "Q6279", "biden", "Q6279", CONSISTENT),
    ("Obama waves to the crowd in Chicago.", "Obama", "Q76", "obama", "Q76", CONSISTENT),
    ("Obama delivered the commencement address.", "Obama", "Q76", "obama", "Q76", CONSISTENT),
    ("Harington arrives at the premiere in London.", "Harington", "Q357607", "kit_harington", "Q357607", CONSISTENT),
    ("Harington poses for photographers.", "Harington", "Q357607", "kit_harington", "Q357607", CONSISTENT),
    ("Leslie on the red carpet at the awards.", "Leslie", "Q461132", "rose_leslie", "Q461132", CONSISTENT),
    ("Leslie attends the screening.", "Leslie", "Q461132", "rose_leslie", "Q461132", CONSISTENT),
    ("Joe Biden signs the bill into law.", "Joe Biden", "Q6279", "biden", "Q6279", CONSISTENT),
    ("Barack Obama at the White House.", "Barack Obama", "Q76", "obama", "Q76", CONSISTENT),
    ("Kit Harington in a scene from the series.", "Kit Harington", "Q357607", "kit_harington", "Q357607", CONSISTENT),
    ("Rose Leslie at the film festival.", "Rose Leslie", "Q461132", "rose_leslie", "Q461132", CONSISTENT),
    ("Lacamoire conducts the orchestra.", "Lacamoire", "Alex Lacamoire", "alex_lacamoire", None, NIL_FACE),
    ("Alex Lacamoire at the piano during rehearsal.", "Alex Lacamoire", "Alex Lacamoire", "alex_lacamoire", None, NIL_FACE),
    ("Obama's guest, an astronaut, visited the school.", "Obama", "Q76", "astronaut", None, NIL_FACE),
    ("Biden met an astronaut at the space center.", "Biden", "Q6279", "astronaut", None, NIL_FACE),
    # misleading: a namesake of the person shown, by full name ...
    ("Hunter Biden testifies before the committee.", "Hunter Biden", "Hunter Biden", "biden", "Q6279", MISLEADING),
    ("Beau Biden, Attorney General of Delaware, at a press conference.", "Beau Biden", "Beau Biden", "biden", "Q6279", MISLEADING),
    ("Malia Obama at the film festival in Sundance.", "Malia Obama", "Malia Obama", "obama", "Q76", MISLEADING),
    ("Alex Harington, the stage designer, at the theatre.", "Alex Harington", "Alex Harington", "kit_harington", "Q357607", MISLEADING),
    # ... by surname, the context pointing to the namesake (the joint step's worst case) ...
    ("Harington, the stage designer and theatre director, at the opening.", "Harington", "Alex Harington", "kit_harington", "Q357607", MISLEADING),
    ("Biden, the social worker and fashion designer, at the gala.", "Biden", "Ashley Biden", "biden", "Q6279", MISLEADING),
    ("Obama, the lawyer and writer, signs copies of her memoir.", "Obama", "Q13133", "obama", "Q76", MISLEADING),
    ("Biden, the school teacher, visits a classroom in Delaware.", "Biden", "Q235349", "biden", "Q6279", MISLEADING),
    ("Leslie, the film actor born in Detroit, in a 1940s musical.", "Leslie", "Q260318", "rose_leslie", "Q461132", MISLEADING),
    # ... or another person altogether (the face is not a candidate of the mention)
    ("Rose Leslie at the premiere with her husband.", "Rose Leslie", "Q461132", "kit_harington", "Q357607", MISLEADING),
    ("Obama endorsed the candidate on Tuesday.", "Obama", "Q76", "biden", "Q6279", MISLEADING),
]
DEGRADE = ("orig", "small", "blur", "grey")


def degrade(image: Image.Image, how: str) -> Image.Image:
    """A harder probe: a downscaled, blurred or grey copy (news photos are often like that)."""
    if how == "small":
        w, h = image.size
        f = 200 / max(w, h)
        return image.resize((max(1, int(w * f)), max(1, int(h * f))), Image.BILINEAR)
    if how == "blur":
        return image.filter(ImageFilter.GaussianBlur(radius=max(image.size) / 250))
    if how == "grey":
        return image.convert("L")
    return image


def build_kb(out: Path) -> Path:
    """WikiMEL entities + namesakes, as the default KB of the data home `out` with a hashing text
    index; returns its `kb.sqlite`."""
    from indexer.bootstrap import ensure_kb
    from indexer.text import load_text_encoder

    out.mkdir(parents=True, exist_ok=True)
    src = out / "entities.jsonl"
    with src.open("w", encoding="utf-8") as fh:
        fh.write((DATA / "wikimel" / "kb.jsonl").read_text(encoding="utf-8"))
        fh.writelines(json.dumps(e) + "\n" for e in EXTRA_ENTITIES)
    return ensure_kb(out, DEFAULT_KB, src, lambda: load_text_encoder("hashing"), kind="flat").path


def train_reranker(out: Path, kb_file: Path, docs: int) -> Path:
    from indexer.dense import load_text_index
    from indexer.text import load_text_encoder
    from kb.store import KnowledgeBase
    from linker.training.train import train_reranker as train

    from linker.features import FEATURES

    model = out / "models" / "reranker"
    cfg = model.with_suffix(".json")
    settings = model.with_suffix(".train.json")  # what the cached model was trained with
    wanted = {"docs": docs, "epochs": 6, "features": list(FEATURES)}
    if (cfg.is_file() and settings.is_file() and json.loads(settings.read_text()) == wanted
            and json.loads(cfg.read_text()).get("reranker", {}).get("feature_names") == list(FEATURES)):
        log.info("reranker: cached %s", model)
        return model  # trained on these documents and the features this version computes
    kb = KnowledgeBase(kb_file)
    index = load_text_index(kb, kb_file.parent)
    report = train(kb, index, load_text_encoder("hashing"), [DATA / "wikimel" / "train.jsonl"],
                   [DATA / "wikimel" / "dev.jsonl"], model, epochs=6, limit=docs, progress=False)
    log.info("reranker: %s", {k: v for k, v in report.items() if k != "history"})
    settings.write_text(json.dumps(wanted))
    return model


def probes(out: Path) -> list[dict]:
    """The documents: every caption of DOCS with each degradation of its image."""
    import skimage.data

    out.mkdir(parents=True, exist_ok=True)
    docs = []
    for n, (text, surface, gold_t, person, gold_v, kind) in enumerate(DOCS):
        if person == "astronaut":
            src = Image.fromarray(skimage.data.astronaut())
        else:
            src = Image.open(GALLERY / person / PEOPLE[person][3])
        for how in DEGRADE:
            path = out / f"{person}-{how}.png"
            if not path.is_file():
                degrade(src.convert("RGB"), how).save(path)
            start = text.index(surface)
            docs.append({"id": f"{n}-{how}", "text": text, "degradation": how, "kind": kind,
                         "mentions": [{"start": start, "end": start + len(surface), "qid": gold_t}],
                         "images": [{"id": "photo", "path": str(path)}], "face": gold_v})
    return docs


def _prf(m: Metrics) -> dict:
    return {"precision": round(m.precision, 4), "recall": round(m.recall, 4), "f1": round(m.f1, 4),
            "tp": m.true_positives, "predicted": m.linked, "gold": m.linkable}


def _linker(kb_file: Path, face_model: Path | None):
    """The text linker (hashing encoder, the reranker trained here) with a face index of one photo
    per person with two photos; returns it and the face index build report."""
    from indexer.dense import load_text_index
    from indexer.faces import build_face_index, load_face_encoder
    from indexer.text import load_text_encoder
    from kb.store import KnowledgeBase
    from linker.pipeline import Linker
    from linker.reranker import load_model
    from linker.visual import VisualLinker

    kb = KnowledgeBase(kb_file)
    kb_dir = kb_file.parent
    manifest = OUT / "faces.jsonl"
    manifest.write_text("".join(
        json.dumps({"entity": qid, "image": str(GALLERY / folder / index_photo)}) + "\n"
        for folder, (qid, _, index_photo, _) in PEOPLE.items() if index_photo))
    report = build_face_index(kb, load_face_encoder(face_model), manifest, kb_dir, progress=False, rebuild=True)
    reranker, config = load_model(OUT / "models" / "reranker")
    visual = VisualLinker.load(kb, kb_dir, face_model=face_model, config=config.visual,
                               nil_threshold=config.nil_cutoff, nil_lead=config.nil_lead, calibration=config.calibration)
    return Linker(kb, load_text_index(kb, kb_dir), load_text_encoder("hashing"), reranker, config, visual), report


def _link_probe(linker, rec: dict) -> tuple[MentionRecord, MentionRecord]:
    """The text and the face record of one probe document."""
    from kb.types import Document, ImageRef, TextMention

    m = rec["mentions"][0]
    mention = TextMention(m["start"], m["end"], rec["text"][m["start"]:m["end"]])
    doc = Document(rec["id"], rec["text"], (ImageRef("photo", rec["images"][0]["path"]),), (mention,))
    links = next(linker.process([doc])).links
    text = next(l for l in links if isinstance(l.mention, TextMention))
    face = next((l for l in links if not isinstance(l.mention, TextMention)), None)
    face_ranking = [c.entity for c in face.candidates] if face else []
    return (mention_record(m["qid"], [c.entity for c in text.candidates], text.entity, doc=rec["id"], mention=mention,
                           confidence=text.confidence),
            mention_record(rec["face"], face_ranking, face.entity if face else None, doc=rec["id"],
                           confidence=face.confidence if face else None))


def _score_mode(linker, docs: list[dict]) -> tuple[dict, list[tuple[MentionRecord, MentionRecord]]]:
    """Text and visual P/R/F1 overall, per degradation and per caption kind, and the probes with a
    wrong decision; also the (text, face) record of every probe, in order."""
    records: dict[str, tuple[list, list]] = {}
    rows, errors = [], []
    for rec in docs:
        text, face = _link_probe(linker, rec)
        rows.append((text, face))
        for key in ("all", rec["degradation"], "kind:" + rec["kind"]):
            records.setdefault(key, ([], []))[0].append(text)
            records[key][1].append(face)
        if not (text.correct and face.correct):
            errors.append({"doc": rec["id"], "kind": rec["kind"], "text": rec["text"], "text_pred": text.predicted,
                           "text_gold": text.gold, "face_pred": face.predicted, "face_gold": face.gold})
    scores = {key: {"text": _prf(Metrics(tuple(t))), "visual": _prf(Metrics(tuple(v)))}
              for key, (t, v) in records.items()}
    out = {key: v for key, v in scores.items() if not key.startswith("kind:")}
    out["by_kind"] = {key[5:]: v for key, v in scores.items() if key.startswith("kind:")}
    # the links' confidence against being right (a small set: a sanity check, not a calibration)
    out["reliability"] = {side: Metrics(tuple(r[i] for r in rows)).reliability() for i, side in enumerate(("text", "visual"))}
    return {**out, "errors": errors}, rows


def joint_effect(docs: list[dict], naive: list, joint: list) -> dict:
    """Per caption kind (and over all), how the joint step changed the decisions of the naive one:
    `helped` (naive wrong, joint right), `hurt` (naive right, joint wrong), `changed_wrong`
    (wrong both ways, but different), `unchanged`, and how many each mode got right; text and face
    separately, with the documents helped and hurt."""
    out: dict = {}
    for rec, (n_text, n_face), (j_text, j_face) in zip(docs, naive, joint, strict=True):
        for key in ("all", rec["kind"]):
            group = out.setdefault(key, {"documents": 0, "hurt_docs": [], "helped_docs": [],
                                         **{side: dict.fromkeys(("helped", "hurt", "changed_wrong", "unchanged",
                                                                 "naive_correct", "joint_correct"), 0)
                                            for side in ("text", "visual")}})
            group["documents"] += 1
            for side, n, j in (("text", n_text, j_text), ("visual", n_face, j_face)):
                change = ("unchanged" if n.predicted == j.predicted else "helped" if j.correct
                          else "hurt" if n.correct else "changed_wrong")
                group[side][change] += 1
                group[side]["naive_correct"] += n.correct
                group[side]["joint_correct"] += j.correct
                if change in ("helped", "hurt") and key != "all":
                    group[f"{change}_docs"].append(f"{rec['id']} {side}: {n.predicted} -> {j.predicted} (gold {n.gold})")
    return out


def evaluate(kb_file: Path, face_model: Path | None) -> dict:
    """Text and face micro P/R/F1, naive vs joint, overall, per degradation and per caption
    kind, and where the joint step helped and hurt."""
    import torch

    torch.manual_seed(0)
    linker, report = _linker(kb_file, face_model)
    docs = probes(OUT / "probes")
    out: dict = {"face_index": {k: report[k] for k in ("added", "faces_total")},
                 "face_threshold": linker.visual.threshold, "modes": {}}
    rows = {}
    for mode in ("naive", "joint"):
        linker.config = linker.config.override({"joint": mode == "joint"})
        out["modes"][mode], rows[mode] = _score_mode(linker, docs)
    out["joint_effect"] = joint_effect(docs, rows["naive"], rows["joint"])
    out["summary"] = {mode: {"text_f1": out["modes"][mode]["all"]["text"]["f1"],
                             "visual_f1": out["modes"][mode]["all"]["visual"]["f1"],
                             "text_f1_by_kind": {k: v["text"]["f1"] for k, v in out["modes"][mode]["by_kind"].items()},
                             "visual_f1_by_kind": {k: v["visual"]["f1"] for k, v in out["modes"][mode]["by_kind"].items()}}
                      for mode in out["modes"]}
    return out


def describe() -> dict:
    return {
        "documents": len(DOCS) * len(DEGRADE), "captions": len(DOCS), "degradations": list(DEGRADE),
        "captions_by_kind": {k: sum(d[5] == k for d in DOCS) for k in KINDS},
        "kb": "WikiMEL kb.jsonl + %d namesakes" % len(EXTRA_ENTITIES),
        "text_encoder": "hashing (64-d)", "reranker": "trained here on WikiMEL train (first N docs), NIL-calibrated on dev",
        "face_threshold": "dlib's documented 0.6 (not tuned on this set); transformer: calibrated on its training gallery",
        "caveat": "the hashing reranker prefers the spouse for a bare surname ('Obama' -> Michelle Obama): "
                  "that bias makes the consistent surname captions wrong and the misleading ones about the "
                  "spouse right before the joint step, so both its gains and its harm are larger than with a "
                  "stronger text model",
        "note": f"small constructed set ({len(DOCS)} captions x {len(DEGRADE)} image variants, 9 photos of 5 "
                "people; misleading captions name someone else than the face shown): a sanity check of the "
                "mechanism, not comparable to the paper's WikiMEL/Richpedia numbers",
    }


def markdown(results: dict) -> str:
    lines = ["# Naive vs joint multimodal linking (constructed set)", "",
             results["set"]["note"], "",
             "| face encoder | mode | text P | text R | text F1 | visual P | visual R | visual F1 |",
             "|---|---|---|---|---|---|---|---|"]
    for enc, r in results["encoders"].items():
        for mode in ("naive", "joint"):
            t, v = r["modes"][mode]["all"]["text"], r["modes"][mode]["all"]["visual"]
            lines.append(f"| {enc} | {mode} | {t['precision']:.3f} | {t['recall']:.3f} | {t['f1']:.3f} "
                         f"| {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} |")
    lines += ["", "Per image degradation (text F1 / visual F1, naive → joint):", ""]
    for enc, r in results["encoders"].items():
        for how in DEGRADE:
            n, j = r["modes"]["naive"][how], r["modes"]["joint"][how]
            lines.append(f"- {enc}, {how}: text {n['text']['f1']:.3f} → {j['text']['f1']:.3f}, "
                         f"visual {n['visual']['f1']:.3f} → {j['visual']['f1']:.3f}")
    lines += ["", "Per caption kind, naive → joint: F1, decisions right (a NIL face decided NIL is right), and "
              "the decisions the joint step fixed (naive wrong, joint right) and broke (naive right, joint wrong):", "",
              "| face encoder | kind | docs | text F1 | text right | visual F1 | faces right | text fixed | text broken "
              "| faces fixed | faces broken |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for enc, r in results["encoders"].items():
        effect = r.get("joint_effect", {})
        for kind in (*KINDS, "all"):
            if kind not in effect:
                continue
            e = effect[kind]
            n, j = ((r["modes"][m]["all"] if kind == "all" else r["modes"][m]["by_kind"][kind]) for m in ("naive", "joint"))
            t, v = e["text"], e["visual"]
            lines.append(f"| {enc} | {kind} | {e['documents']} | {n['text']['f1']:.3f} → {j['text']['f1']:.3f} "
                         f"| {t['naive_correct']} → {t['joint_correct']} "
                         f"| {n['visual']['f1']:.3f} → {j['visual']['f1']:.3f} | {v['naive_correct']} → {v['joint_correct']} "
                         f"| {t['helped']} | {t['hurt']} | {v['helped']} | {v['hurt']} |")
    hurt = [d for r in results["encoders"].values() for k in KINDS for d in r.get("joint_effect", {}).get(k, {}).get("hurt_docs", [])]
    if hurt:
        lines += ["", "Decisions the joint step broke: " + "; ".join(hurt[:12]) + (" ..." if len(hurt) > 12 else "")]
    lines += ["", "Confidence of the links (a sanity check on a small set): links, ECE, share with confidence ≥ 0.9 "
                  "and how often those are right:", ""]
    for enc, r in results["encoders"].items():
        for mode, m in r["modes"].items():
            for side, t in (m.get("reliability") or {}).items():
                if t:
                    at = "–" if t["accuracy_at_0.9"] is None else f"{t['accuracy_at_0.9']:.3f}"
                    lines.append(f"- {enc}, {mode}, {side}: {t['count']} links, ECE {t['ece']:.3f}, "
                                 f"≥ 0.9: {t['share_at_0.9']:.3f} of them, right {at}")
    lines += ["", f"Revision {results['machine']['git_revision']}, {results['machine']['platform']}, "
              f"{results['machine']['cpu_count']} CPUs, {results['seconds']} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-docs", type=int, default=400)
    ap.add_argument("--setup-only", action="store_true")
    ap.add_argument("--face-transformer", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.time()
    kb_file = build_kb(OUT)
    log.info("KB + text index ready (%.0f s)", time.time() - t0)
    train_reranker(OUT, kb_file, args.train_docs)
    log.info("reranker ready (%.0f s)", time.time() - t0)
    if args.setup_only:
        return
    results = {"machine": machine(), "set": describe(), "encoders": {}}
    encoders = {"dlib": None}
    if args.face_transformer:
        from indexer.face_transformer import train_faces

        ft = OUT / "models" / "face-transformer"
        if not (ft / "calibration.json").is_file():
            log.info("training the face transformer: %s", train_faces(GALLERY, ft, epochs=40, progress=False))
        encoders["face-transformer"] = ft
    for name, face_model in encoders.items():
        results["encoders"][name] = evaluate(kb_file, face_model)
        log.info("%s: %s", name, json.dumps(results["encoders"][name]["summary"]))
    results["seconds"] = round(time.time() - t0, 1)
    write_json(results_dir() / "joint.json", results)
    (results_dir() / "joint.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
