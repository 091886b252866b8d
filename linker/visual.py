r"""Visual linking of faces and joint text-face disambiguation (M3EL §4.2-4.3).

For each image of a document the `VisualLinker` detects faces, embeds them with the same encoder
that built the KB's face index, and ranks candidate entities by face distance :math:`d`:

- the top-k entities of the face index, unioned with
- the document's textual candidates that have a face in the KB (min distance to their faces).

A face's candidate distribution is a softmax over its candidates *and NIL*, with NIL sitting at
the calibrated same-person distance :math:`\tau`:

.. math::
    P_v(e) \propto \exp(-d_e / s), \qquad P_v(\mathrm{NIL}) \propto \exp(-\tau / s)

so that with one candidate :math:`P_v(e) = \sigma((\tau - d_e)/s)` (the face score) and the naive
decision "NIL unless :math:`d < \tau`" is the argmax. Text mentions likewise get
:math:`P_t(e) \propto \exp(r_e / \theta)` over their reranker scores :math:`r_e`, with a NIL column at
the reranker's NIL threshold. The joint step (`linker.ot.joint_rescore`, a fused GW plan) then
moves evidence between the two sides; each side keeps only evidence on its own candidates (a face
never invents a text candidate; an unknown face never makes a mention NIL), and the rescored
distributions are mapped back to the original scales (reranker scores, face distances), so a
mention or face the plan leaves alone keeps exactly its naive scores and decision.
Mentions none of whose candidates has a face in the KB are left out of the joint step.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from indexer.face_transformer import TRANSFORMER_PREFIX, encoder_threshold
from indexer.face_encoders import FaceEncoder, image_faces
from indexer.faces import FACE_INDEX, FaceIndex, load_face_encoder, load_face_index
from kb.errors import IndexMismatchError, InputError
from kb.store import KnowledgeBase
from kb.types import Candidate, Document, FaceMention, Link
from linker.calibration import Calibration, ranked_decision, top_cutoff
from linker.config import VisualConfig
from linker.features import shares_name
from linker.ot import joint_rescore, logsumexp, normalize_rows, structure_from_embeddings

log = logging.getLogger(__name__)


_TINY = 1e-12


# -- pure scoring -----------------------------------------------------------------------------


def face_score(distance: np.ndarray | float, threshold: float, scale: float) -> np.ndarray:
    r"""Face match score :math:`\sigma((\tau - d) / s)`: 0.5 at the NIL threshold :math:`\tau`."""
    d = np.asarray(distance, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-(threshold - d) / scale))


def face_posterior(distances: np.ndarray, threshold: float, scale: float) -> tuple[np.ndarray, float]:
    r"""Posterior over a face's candidates and NIL: :math:`P(e) \propto e^{-d_e/s}`,
    :math:`P(\mathrm{NIL}) \propto e^{-\tau/s}`. With one candidate :math:`P(e)` is
    `face_score`; the argmax is the nearest candidate unless :math:`d \ge \tau` (NIL).
    Returns `(P(candidates), P(NIL))`."""
    logits = np.concatenate([-np.asarray(distances, float), [-threshold]]) / scale
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return p[:-1], float(p[-1])


# -- the visual linker ------------------------------------------------------------------------


@dataclass
class _Faces:
    mentions: list[FaceMention]
    vectors: np.ndarray
    warnings: list[str]


class VisualLinker:
    """Links the faces of a document's images and, optionally, re-decides text and faces jointly."""

    def __init__(self, kb: KnowledgeBase, index: FaceIndex, encoder: FaceEncoder,
                 config: VisualConfig = VisualConfig(), nil_threshold: float = float("-inf"),
                 calibration: Calibration | None = None, nil_lead: float = 0.0):
        model_id = index.manifest.get("model_id")
        if model_id not in (None, encoder.model_id):
            raise IndexMismatchError(
                f"face index was built with {model_id!r} but the face encoder is {encoder.model_id!r}: "
                "rebuild it with `mmel kb add-faces --rebuild [--face-model ...]` or pick the matching model"
            )
        self.kb = kb
        self.index = index
        self.encoder = encoder
        self.config = config
        self.threshold = config.threshold if config.threshold is not None else encoder_threshold(encoder)
        self.nil_threshold = nil_threshold  # the text reranker's NIL cut-off (its NIL column) ...
        self.nil_lead = nil_lead  # ... on its decision score, `linker.calibration.decision_score`
        self.calibration = calibration  # the text reranker's decision score → confidence
        self._with_faces = {int(i) for i in index.entities()}

    @classmethod
    def load(cls, kb: KnowledgeBase, kb_dir: str | os.PathLike, face_model: str | os.PathLike | None = None,
             home: str | os.PathLike | None = None, **kwargs) -> VisualLinker:
        """The visual linker for a KB with a face index, with the encoder that built the index.

        A transformer-built index needs its model: `face_model`, else
        `<home>/models/face-transformer`.
        """
        from kb.home import resolve_home

        manifest = json.loads((Path(kb_dir) / f"{FACE_INDEX}.json").read_text(encoding="utf-8"))
        model_id = manifest.get("model_id")
        if face_model is None and str(model_id).startswith(TRANSFORMER_PREFIX):
            face_model = resolve_home(home) / "models" / "face-transformer"
        encoder = load_face_encoder(face_model)
        index = load_face_index(kb, kb_dir, model_id=encoder.model_id)
        return cls(kb, index, encoder, **kwargs)

    # -- faces --------------------------------------------------------------------------------

    def faces(self, doc: Document) -> _Faces:
        """Detected faces and embeddings of all images; one warning per unreadable image."""
        mentions, vectors, warnings = [], [], []
        for ref in doc.images:
            try:
                boxes, embedded = image_faces(self.encoder, ref.path)  # within the decode budget
            except InputError as exc:
                warnings.append(f"image {ref.id!r} skipped: {exc}")
                log.warning("document %s: image %s skipped: %s", doc.id, ref.id, exc)
                continue
            if boxes:
                vectors.append(embedded)
                mentions.extend(FaceMention(ref.id, tuple(int(v) for v in b)) for b in boxes)
        vecs = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, self.index.dim), np.float32)
        return _Faces(mentions, vecs, warnings)

    def face_candidates(self, vectors: np.ndarray, text_links: list[Link]) -> list[dict[int, float]]:
        """Per face: entity idx → min distance, over the index's top-k and the text candidates with faces."""
        if not len(vectors):
            return []
        dist, ids = self.index.search(vectors, self.config.k)
        text_idxs = {i for l in text_links for c in l.candidates
                     if (i := self.kb.idx_of(c.entity)) is not None and i in self._with_faces}
        own = {i: self.index.vectors_for(i) for i in text_idxs}
        out = []
        for f, v in enumerate(vectors):
            cands: dict[int, float] = {}
            for d, i in zip(dist[f], ids[f]):
                if i >= 0:
                    cands[int(i)] = min(float(d), cands.get(int(i), math.inf))
            for i, vs in own.items():
                d = float(np.linalg.norm(vs - v, axis=1).min())
                cands[i] = min(d, cands.get(i, math.inf))
            out.append(cands)
        return out

    def _face_link(self, face: FaceMention, dists: dict[int, float], names: dict[int, tuple[str, str]]) -> Link:
        """Naive decision: the nearest entity unless it is beyond the threshold (NIL). Scores are
        the posterior over the candidates and NIL (`face_posterior`); the distance is `features[0]`."""
        order = sorted(dists, key=dists.get)
        d = np.array([dists[i] for i in order])
        post, nil = face_posterior(d, self.threshold, self.config.scale)
        cands = tuple(
            Candidate(entity=names[i][0], name=names[i][1], score=float(p), features=(float(di),))
            for i, p, di in zip(order, post, d)
        )
        best = cands[0] if cands else None
        entity = best.entity if best is not None and best.score > nil else None
        score = best.score if best else 0.0
        return Link(face, entity, score, cands, confidence=score)

    # -- linking ------------------------------------------------------------------------------

    def link(self, doc: Document, text_links: list[Link], joint: bool = True
             ) -> tuple[list[Link], list[Link], list[str]]:
        """`(text_links, face_links, warnings)`; text links are re-decided only when `joint`."""
        text_links = list(text_links)
        faces = self.faces(doc)
        cand_dists = self.face_candidates(faces.vectors, text_links)
        idxs = sorted({i for c in cand_dists for i in c})
        names = {i: (e.id, e.name) for i, e in zip(idxs, self.kb.by_idx(idxs))}
        face_links = [self._face_link(f, d, names) for f, d in zip(faces.mentions, cand_dists)]
        if joint and face_links:
            text_links, face_links = self._joint(text_links, face_links, faces.vectors)
        return text_links, face_links, faces.warnings

    def _text_cutoff(self, candidates) -> float:
        """A text mention's NIL logit: the top score at which its decision score reaches the NIL threshold."""
        return top_cutoff(self.nil_threshold, candidates[1].score if len(candidates) > 1 else None, self.nil_lead)

    def _joint(self, text_links: list[Link], face_links: list[Link], face_vectors: np.ndarray
               ) -> tuple[list[Link], list[Link]]:
        """Re-decide the mentions that have a candidate with a face whose name they share, and all
        faces, jointly (a face must not pull "Columbia" to Eileen Collins because she came among
        its candidates as a dense neighbour of the context)."""
        cfg = self.config
        rows = [t for t, l in enumerate(text_links)
                if any((i := self.kb.idx_of(c.entity)) is not None and i in self._with_faces
                       and shares_name(l.mention.surface, c.name) for c in l.candidates)]
        if not rows:
            return text_links, face_links
        vocab = sorted({c.entity for t in rows for c in text_links[t].candidates}
                       | {c.entity for l in face_links for c in l.candidates})
        col = {e: j for j, e in enumerate(vocab)}
        nil_t, nil_v = len(vocab), len(vocab) + 1  # separate NIL columns: they never "agree"
        E = len(vocab) + 2

        def distribution(entities, logits, nil_col, nil_logit):
            logits = np.asarray(list(logits) + ([nil_logit] if math.isfinite(nil_logit) else []), float)
            cols = [col[e] for e in entities] + ([nil_col] if math.isfinite(nil_logit) else [])
            row = np.zeros(E)
            norm = float(logsumexp(logits, keepdims=False))
            row[cols] = np.exp(logits - norm)
            return row, norm

        temp, s, tau = cfg.text_temperature, cfg.scale, self.threshold
        P_t, norms_t = zip(*(distribution([c.entity for c in text_links[t].candidates],
                                          [c.score / temp for c in text_links[t].candidates],
                                          nil_t, self._text_cutoff(text_links[t].candidates) / temp) for t in rows))
        P_v, norms_v = zip(*(distribution([c.entity for c in l.candidates],
                                          [-c.features[0] / s for c in l.candidates],
                                          nil_v, -tau / s) for l in face_links))
        P_t, P_v = np.vstack(P_t), np.vstack(P_v)
        C_v = structure_from_embeddings(face_vectors) if len(face_vectors) > 1 else np.zeros((1, 1))
        P_t2, P_v2, _ = joint_rescore(P_t, P_v, None, C_v, alpha=cfg.alpha, epsilon=cfg.epsilon,
                                      mass=cfg.mass, weight=cfg.weight, keep_support=False)
        # keep only evidence on a node's own candidates (own NIL included), without amplifying it
        P_t2 = normalize_rows(P_t2 * (P_t > 0))
        P_v2 = normalize_rows(P_v2 * (P_v > 0))

        text_links = list(text_links)
        for r, t in enumerate(rows):
            link = text_links[t]
            scores = {c.entity: temp * (math.log(max(P_t2[r, col[c.entity]], _TINY)) + norms_t[r])
                      for c in link.candidates}
            cands = tuple(sorted((replace(c, score=scores[c.entity]) for c in link.candidates),
                                 key=lambda c: -c.score))
            nil = P_t2[r, nil_t] > P_t2[r, col[cands[0].entity]]
            cal = self.calibration
            text_links[t] = Link(link.mention, None if nil else cands[0].entity, cands[0].score, cands,
                                 confidence=cal.confidence(ranked_decision([c.score for c in cands[:2]], self.nil_lead))
                                 if cal else None)
        new_faces = []
        for r, link in enumerate(face_links):
            if not link.candidates:
                new_faces.append(link)
                continue
            cands = tuple(sorted((replace(c, score=float(P_v2[r, col[c.entity]])) for c in link.candidates),
                                 key=lambda c: -c.score))
            nil = P_v2[r, nil_v] >= P_v2[r, col[cands[0].entity]]
            new_faces.append(Link(link.mention, None if nil else cands[0].entity, cands[0].score, cands,
                                  confidence=cands[0].score))
        return text_links, new_faces
