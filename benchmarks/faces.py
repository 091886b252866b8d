"""Face identification with NIL: dlib vs the paper's face transformer, on a gallery + probe set.

Gallery: a folder `<entity>/<images>`, indexed (one face per image). Probes: JSONL
`{"image": path, "entities": [ids of the people shown]}` (empty list: nobody known, every face
should be NIL). A probe face counts as correct when its decision is in `entities`; NIL decisions
count as not predicted. Micro precision/recall/F1 per encoder, at each encoder's own threshold
(dlib 0.6; transformer: calibrated on its training gallery).

Without arguments it uses the shared gallery: the first photo of each person with two photos is
indexed, the second is a probe; Alex Lacamoire (one photo) and skimage's astronaut are unknown
probes. The transformer is trained on the same 9 photos (there is no other face data here), so
its numbers are optimistic. Writes `benchmarks/results/faces.json`.

    python benchmarks/faces.py [--gallery DIR --probes FILE] [--epochs 40]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATA, WORK, machine, results_dir, write_json  # noqa: E402
from linker.training.evaluate import Metrics, MentionRecord, mention_record  # noqa: E402

log = logging.getLogger("benchmarks.faces")
SHARED = (DATA / "faces" / "gallery").resolve()


def default_split(work: Path) -> tuple[Path, Path]:
    """Gallery (first photo of each 2-photo person) and probes (the rest + the astronaut)."""
    import shutil

    import skimage.data
    from PIL import Image

    gallery, probes = work / "gallery", []
    shutil.rmtree(gallery, ignore_errors=True)
    for person in sorted(p for p in SHARED.iterdir() if p.is_dir()):
        photos = sorted(person.iterdir())
        if len(photos) >= 2:
            (gallery / person.name).mkdir(parents=True)
            shutil.copy(photos[0], gallery / person.name / photos[0].name)
            probes += [{"image": str(p), "entities": [person.name]} for p in photos[1:]]
        else:
            probes += [{"image": str(p), "entities": []} for p in photos]
    astro = work / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(astro)
    probes.append({"image": str(astro), "entities": []})
    path = work / "probes.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in probes))
    return gallery, path


def probe_records(faces: list, entities: list[str], doc: str) -> list[MentionRecord]:
    """Records of one probe image's faces against the people it shows (in no particular order):
    a face decided as one of them is correct; the other people are paired with the remaining
    faces, or with a missing face (a NIL decision) when fewer faces were found than people; the
    faces left over show nobody known (gold NIL)."""
    missing = sorted(set(entities) - {f.entity for f in faces})
    out = []
    for f in faces:
        ranking = [c.entity for c in f.candidates]
        gold = f.entity if f.entity in entities else (missing.pop(0) if missing else None)
        out.append(mention_record(gold, ranking, f.entity, doc=doc))
    return out + [mention_record(e, [], None, doc=doc) for e in missing]


def evaluate(encoder, gallery: Path, probes: Path, work: Path) -> dict:
    from kb.store import KBWriter, KnowledgeBase
    from kb.types import Entity
    from indexer.faces import build_face_index
    from linker.visual import VisualLinker
    from kb.types import Document, ImageRef

    people = sorted(p.name for p in gallery.iterdir() if p.is_dir())
    kb_dir = Path(tempfile.mkdtemp(dir=work))
    with KBWriter(kb_dir / "kb.sqlite") as w:
        w.add_entities(Entity(p, p) for p in people)
        w.finish(progress=False)
    kb = KnowledgeBase(kb_dir / "kb.sqlite")
    build_face_index(kb, encoder, gallery, kb_dir, progress=False, rebuild=True)
    from indexer.faces import load_face_index

    vl = VisualLinker(kb, load_face_index(kb, kb_dir, encoder.model_id), encoder)
    known, unknown, rows = [], [], []
    for n, line in enumerate(probes.read_text().splitlines()):
        rec = json.loads(line)
        _, faces, warnings = vl.link(Document(str(n), "", (ImageRef("p", rec["image"]),)), [], joint=False)
        (known if rec["entities"] else unknown).extend(probe_records(faces, rec["entities"], str(n)))
        rows.append({"image": Path(rec["image"]).name, "gold": sorted(set(rec["entities"])),
                     "pred": [f.entity for f in faces],
                     "distance": [round(f.candidates[0].features[0], 3) if f.candidates else None for f in faces],
                     "warnings": warnings})
    m, nobody = Metrics(tuple(known + unknown)), Metrics(tuple(unknown))
    return {"model_id": encoder.model_id, "threshold": round(vl.threshold, 4), "precision": round(m.precision, 4),
            "recall": round(m.recall, 4), "f1": round(m.f1, 4),
            "unknown_faces": nobody.gold_nil, "unknown_faces_nil": nobody.nil_correct, "probes": rows}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gallery", type=Path)
    ap.add_argument("--probes", type=Path)
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from indexer.face_encoders import DlibFaceEncoder
    from indexer.face_transformer import TransformerFaceEncoder, train_faces

    work = WORK / "faces"
    work.mkdir(parents=True, exist_ok=True)
    gallery, probes = (args.gallery, args.probes) if args.gallery else default_split(work)
    model = work / "face-transformer"
    train_report = train_faces(SHARED if not args.gallery else gallery, model, epochs=args.epochs, progress=False)
    out = {"machine": machine(), "gallery": str(gallery), "probes": str(probes),
           "transformer_training": {k: v for k, v in train_report.items() if k != "skipped"},
           "encoders": {
               "dlib": evaluate(DlibFaceEncoder(), gallery, probes, work),
               "face-transformer": evaluate(TransformerFaceEncoder(model), gallery, probes, work),
           }}
    write_json(results_dir() / "faces.json", out)
    for name, r in out["encoders"].items():
        print(f"{name}: P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} (threshold {r['threshold']}), "
              f"{r['unknown_faces_nil']}/{r['unknown_faces']} unknown faces NIL")


if __name__ == "__main__":
    main()
