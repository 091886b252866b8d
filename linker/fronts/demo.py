"""`mmel demo`: build the embedded demo KB (40 entities written for the project) with its text and
face indexes under the data home, then link a demo document with an image.

The face index holds one photo: the face from NASA's portrait of astronaut Eileen Collins that
ships with scikit-image (`skimage.data.astronaut()`); the document's image is a mirrored crop of
the whole portrait, in which the detector also finds a second, unknown face (on the mission
patch), so the demo shows a NIL face too.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from kb.home import kb_dir

DEMO_KB = Path(__file__).resolve().parents[2] / "kb" / "data" / "demo_kb.jsonl"
DEMO_NAME = "demo"
DEMO_TEXT = (
    "Collins commanded Columbia in 1999, four years after she piloted Discovery to the Mir "
    "space station. Mission control in Houston followed both flights."
)


def _images(folder: Path) -> tuple[Path, Path]:
    """The KB's face photo and the document's photo (mirrored crop), written once."""
    import numpy as np
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    gallery, probe = folder / "eileen_collins.png", folder / "document.png"
    if not gallery.is_file() or not probe.is_file():
        img = data.astronaut()
        Image.fromarray(np.ascontiguousarray(img[:280, 60:380])).save(gallery)  # her face only
        Image.fromarray(np.ascontiguousarray(img[20:480, 30:500][:, ::-1])).save(probe)
    return gallery, probe


def run_demo(home: str | os.PathLike | None = None, progress: bool = True) -> dict:
    """Build the demo KB if needed and link the demo document; returns the output record."""
    from indexer.bootstrap import ensure_kb
    from indexer.faces import build_face_index, load_face_encoder
    from kb.types import Document, ImageRef
    from linker.document import document_record
    from linker.pipeline import Linker
    from linker.profiles import ensure_profiles

    folder = kb_dir(home, DEMO_NAME)
    gallery, probe = _images(folder / "images")
    kb = ensure_kb(home, DEMO_NAME, DEMO_KB, progress=progress)
    ensure_profiles(kb, folder)
    if not (folder / "faces.json").is_file():
        manifest = folder / "images" / "faces.jsonl"
        manifest.write_text(json.dumps({"entity": "Eileen Collins", "image": gallery.name}) + "\n")
        build_face_index(kb, load_face_encoder(), manifest, folder, progress=progress)
    linker = Linker.load(home, DEMO_NAME)
    doc = Document(id="demo", text=DEMO_TEXT, images=(ImageRef("photo", str(probe)),))
    linked = next(linker.process([doc]))
    return document_record(linked.document, linked.links, linked.warnings)
