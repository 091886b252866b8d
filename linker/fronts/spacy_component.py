"""The spaCy pipeline component `mmel_linker`: links a Doc's entities to an mmel KB.

Add it after whatever finds entities (`ner`, an `entity_ruler`):

    nlp.add_pipe("mmel_linker", config={"home": "~/mmel-data", "kb": "wikimel"})

It is registered through the `spacy_factories` entry point, so no import is needed once mmel is
installed. For every entity whose label is in `labels` (all entities when `labels` is empty) it
sets `ent.kb_id_` (the entity id, "" for NIL, as spaCy's own `entity_linker` does through the
tokens' `ent_kb_id_`), `ent._.mmel_confidence` (the probability that the best candidate is right,
None from a model without calibration), `ent._.mmel_score` (its raw score) and `ent._.mmel_candidates` (the top candidates as
`{"entity", "name", "score", "prior"}` dicts). `nlp.pipe` links `batch_size` documents per call of
`Linker.link_many`; `overrides` changes settings of the linker config saved with the model
(`{"candidates.dense_k": 5}`, see `mmel config`). `to_disk` writes the component's config; `from_disk` reads it back and loads
the linker it names.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from kb.errors import ConfigError
from kb.home import DEFAULT_KB
from kb.types import Document, Link, TextMention
from linker.mentions import SPACY_LABELS

CONFIG_FILE = "cfg.json"
TOP_CANDIDATES = 5

for _name in ("mmel_confidence", "mmel_score", "mmel_candidates"):
    if not Span.has_extension(_name):
        Span.set_extension(_name, default=None)


@Language.factory(
    "mmel_linker",
    default_config={"home": None, "kb": DEFAULT_KB, "model": None, "batch_size": 64, "labels": list(SPACY_LABELS),
                    "overrides": {}},
)
def make_mmel_linker(nlp: Language, name: str, home: str | None, kb: str, model: str | None,
                     batch_size: int, labels: list[str], overrides: dict) -> MmelLinker:
    return MmelLinker(name, home=home, kb=kb, model=model, batch_size=batch_size, labels=labels, overrides=overrides)


class MmelLinker:
    """Links `doc.ents` with an mmel `Linker` loaded from `home`/`kb` (and reranker `model`)."""

    def __init__(self, name: str = "mmel_linker", *, home: str | None = None, kb: str = DEFAULT_KB,
                 model: str | None = None, batch_size: int = 64, labels: Sequence[str] = SPACY_LABELS,
                 overrides: dict | None = None):
        if batch_size < 1:
            raise ConfigError(f"mmel_linker batch_size must be >= 1, got {batch_size}")
        self.name = name
        self.cfg = {"home": home, "kb": kb, "model": model, "batch_size": batch_size, "labels": list(labels),
                    "overrides": dict(overrides or {})}
        self.linker = _load_linker(self.cfg)

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, stream: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        """Link `stream` in batches of the component's `batch_size` (spaCy's own `batch_size`,
        the size of its batches of texts, does not change how many documents the linker sees)."""
        size = self.cfg["batch_size"]
        for docs in minibatch(stream, size=size):
            mentions = [self._mentions(doc) for doc in docs]
            batch = [Document(id=str(i), text=doc.text, mentions=tuple(m for m, _ in ms))
                     for i, (doc, ms) in enumerate(zip(docs, mentions))]
            for doc, ms, links in zip(docs, mentions, self.linker.link_many(batch, batch_size=size)):
                set_annotations([ent for _, ent in ms], links)
                yield doc

    def _mentions(self, doc: Doc) -> list[tuple[TextMention, Span]]:
        labels = set(self.cfg["labels"])
        return [(TextMention(e.start_char, e.end_char, e.text), e) for e in doc.ents
                if not labels or e.label_ in labels]

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(self.cfg, indent=2) + "\n", encoding="utf-8")

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> MmelLinker:
        file = Path(path) / CONFIG_FILE
        if not file.is_file():
            raise ConfigError(f"no mmel_linker config at {file}")
        cfg = json.loads(file.read_text(encoding="utf-8"))
        if cfg != self.cfg:
            self.cfg = cfg
            self.linker = _load_linker(cfg)
        return self


def _load_linker(cfg: dict):
    from linker.pipeline import Linker

    return Linker.load(cfg["home"], cfg["kb"], cfg["model"], overrides=cfg.get("overrides"))


def set_annotations(ents: Sequence[Span], links: Sequence[Link]) -> None:
    """Write each link onto its entity span: kb id ("" for NIL) on the tokens, confidence, score and candidates."""
    for ent, link in zip(ents, links):
        for token in ent:
            token.ent_kb_id_ = link.entity or ""
        ent._.mmel_confidence = link.confidence
        ent._.mmel_score = link.score
        ent._.mmel_candidates = [
            {"entity": c.entity, "name": c.name, "score": round(c.score, 4), "prior": round(c.prior, 4)}
            for c in link.candidates[:TOP_CANDIDATES]
        ]
