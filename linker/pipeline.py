"""The text-linking pipeline: mentions → context embeddings → candidates → features → reranker.

`Linker` is the Python API (`Linker.load(home).link(doc)`); `featurize` is shared with training
so that the model sees exactly the features it is trained on.
"""
from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from kb.errors import ConfigError
from kb.home import DEFAULT_KB, kb_dir, kb_path, resolve_home
from kb.morphology import rewrites
from kb.normalize import mention_key
from kb.store import KnowledgeBase
from kb.types import Candidate, Document, Link, LinkedDocument, TextMention
from linker.calibration import ranked_decision
from linker.candidates import CandidateGenerator, MentionCandidates
from linker.config import LinkerConfig, RerankerConfig
from linker.features import (FEATURES, candidate_features, mention_context, near_words, numeral_after, numerals,
                             without_span, year_spans, years_outside)
from linker.mentions import make_detector
from linker.reranker import Reranker

if TYPE_CHECKING:
    from indexer.dense import DenseIndex
    from indexer.text import TextEncoder
    from linker.profiles import ProfileSource
    from linker.visual import VisualLinker

log = logging.getLogger(__name__)

CONTEXT_CHARS = 300
DEFAULT_MODEL = Path(__file__).resolve().parent / "data" / "reranker"


def context_text(text: str, m: TextMention, width: int = CONTEXT_CHARS) -> str:
    """The text around a mention (the whole text when short)."""
    if len(text) <= 2 * width:
        return text
    lo, hi = max(0, m.start - width), min(len(text), m.end + width)
    return text[lo:hi]


@dataclass(frozen=True)
class Batch:
    """Tensors for a batch of documents (padded to its M mentions and C candidates, but the packed
    entity vectors), plus the candidates to read the scores back."""

    feats: torch.Tensor  # (B, M, C, F)
    cands: torch.Tensor  # (N, D): the entity vectors of the N real pairs of `cand_mask`, in its order
    ctx: torch.Tensor  # (B, M, D)
    cand_mask: torch.Tensor  # (B, M, C)
    mention_mask: torch.Tensor  # (B, M)
    candidates: list[list[MentionCandidates]]


def featurize(
    docs: Sequence[Document],
    mentions: Sequence[Sequence[TextMention]],
    generator: CandidateGenerator,
    encoder,
) -> Batch:
    """Candidates and padded feature tensors for documents with known mentions."""
    flat = [(d, m) for d, ms in zip(docs, mentions) for m in ms]
    ctx_texts = [context_text(d.text, m) for d, m in flat]
    dim = generator.index.dim
    unique = list(dict.fromkeys(ctx_texts))  # short documents share one context for all mentions
    if unique:
        row_of = {t: r for r, t in enumerate(unique)}
        ctx = encoder.encode(unique)[[row_of[t] for t in ctx_texts]]
    else:
        ctx = np.zeros((0, dim), np.float32)
    surfaces = [m.surface for _, m in flat]
    if surfaces and generator.config.surface_k:
        distinct = list(dict.fromkeys(surfaces))
        row_of = {t: r for r, t in enumerate(distinct)}
        surf = encoder.encode(distinct)[[row_of[t] for t in surfaces]]
    else:
        surf = None
    info = generator.kb.mention_info({mention_key(m.surface) for _, m in flat})
    cands = generator.generate([d.text for d in docs], mentions, ctx, surf)
    B = len(docs)
    M = max((len(ms) for ms in mentions), default=0) or 1
    C = max((len(mc.idxs) for doc in cands for mc in doc), default=0) or 1
    feats = np.zeros((B, M, C, len(FEATURES)), np.float32)
    # packed, not padded to (B, M, C, D): most of that would be padding (a batch's documents
    # have a quarter of its M mentions on average), allocated and zeroed for nothing
    cvec = np.concatenate([mc.vectors for doc in cands for mc in doc] or [np.zeros((0, dim), np.float32)])
    cctx = np.zeros((B, M, dim), np.float32)
    cmask = np.zeros((B, M, C), bool)
    mmask = np.zeros((B, M), bool)
    pos = 0
    for b, (doc, doc_cands) in enumerate(zip(docs, cands)):
        doc_numerals, doc_years = numerals(doc.text), year_spans(doc.text)
        for i, mc in enumerate(doc_cands):
            m = mc.mention
            rest = without_span(doc.text, m.start, m.end)
            anchors, _, link_prob = info.get(mention_key(m.surface), (0.0, 0, None))
            context = mention_context(m.surface, context_text(rest, m), rest, len(mc.ranked_pool),
                                      near_words(doc.text, m.start, m.end), doc_numerals,
                                      mc.enclosing, numeral_after(doc.text, m.end), link_prob or 0.0, anchors or 0.0,
                                      years_outside(doc.text, doc_years, m.start, m.end),
                                      rewrites(mention_key(m.surface), generator.rules) if generator.rules else frozenset())
            cctx[b, i] = ctx[pos]
            mmask[b, i] = True
            n = len(mc.idxs)
            cmask[b, i, :n] = True
            feats[b, i, :n] = candidate_features(context, mc.entities, mc.priors, mc.prior_ranks, mc.similarities,
                                                 mc.sources, mc.in_document, mc.profiles or None,
                                                 mc.surface_similarities)
            pos += 1
    t = torch.from_numpy
    return Batch(t(feats), t(cvec), t(cctx), t(cmask), t(mmask), cands)


def set_threads(threads: int) -> None:
    """Torch and FAISS threads for the whole process.

    Linking runs many small operations, where intra-op threads mostly spin against each other
    (and against other processes): one thread is the default for linking and serving. 0 leaves
    the libraries' defaults (all cores).
    """
    import faiss

    if threads < 0:
        raise ConfigError(f"threads must be >= 0, got {threads}")
    if threads == 0:
        return
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


def context_model_id(trained_with: str, index) -> str:
    """The context encoder to use with `index`: the kind the reranker was trained with
    (static or transformer) over the index's own transformer."""
    from indexer.static import STATIC_PREFIX

    base = index.manifest["model_id"]
    return STATIC_PREFIX + base if trained_with.startswith(STATIC_PREFIX) else base


def feature_columns(names: Sequence[str]) -> list[int] | None:
    """The columns of `FEATURES` a reranker trained on features `names` reads, in its order
    (None: all of them, as computed); `ConfigError` for a feature this version does not compute."""
    if tuple(names) == FEATURES:
        return None
    unknown = sorted(set(names) - set(FEATURES))
    if unknown or len(set(names)) != len(names):
        raise ConfigError(f"the reranker was trained with features this version does not compute "
                          f"({unknown or 'repeated names'}): retrain it with `mmel train`")
    return [FEATURES.index(n) for n in names]


def check_compatible(config: RerankerConfig, index, encoder) -> None:
    """Raise ConfigError unless a reranker trained with `config` can score candidates from this
    index and context encoder: features this version computes (a model trained before a
    feature was added reads its own columns), the same embedding width and context model."""
    if len(config.feature_names) != config.n_features:
        raise ConfigError(f"the reranker lists {len(config.feature_names)} feature names for {config.n_features} "
                          f"features: retrain it with `mmel train`")
    feature_columns(config.feature_names)
    if config.dim != index.dim:
        raise ConfigError(f"the reranker expects {config.dim}-d embeddings, the text index has {index.dim}: "
                          f"retrain it with `mmel train` for this index")
    if config.text_model and config.text_model != encoder.model_id:
        raise ConfigError(f"the reranker was trained with context encoder {config.text_model!r}, "
                          f"this linker uses {encoder.model_id!r}: rebuild the index with that model or retrain")


def model_path(home: str | os.PathLike | None, model: str | os.PathLike | None) -> Path:
    """`model`, else the reranker trained in the data home, else the bundled one."""
    if model is not None:
        return Path(model)
    trained = resolve_home(home) / "models" / "reranker"
    return trained if trained.with_suffix(".json").is_file() else DEFAULT_MODEL


class Linker:
    """Links the text mentions of documents to a KB. Thread-safe for concurrent `link` calls.

    Built from one `LinkerConfig` (`linker.config`): `Linker.load` reads the one saved with the
    reranker and applies the caller's overrides; `Linker(...)` takes one (default: the reranker's
    shape with default settings). `profiles`: the KB's precomputed entity profiles
    (`linker.profiles`; default: computed while linking).
    """

    def __init__(self, kb: KnowledgeBase, index: DenseIndex, encoder: TextEncoder, reranker: Reranker,
                 config: LinkerConfig | None = None, visual: VisualLinker | None = None,
                 profiles: ProfileSource | None = None):
        config = config or LinkerConfig(reranker.config)
        if config.reranker != reranker.config:
            raise ConfigError("the linker config was saved for another reranker than the one given")
        check_compatible(reranker.config, index, encoder)
        self.config = config
        self.kb = kb
        self.index = index
        self.encoder = encoder
        self.reranker = reranker
        self._columns = feature_columns(reranker.config.feature_names)
        self.generator = CandidateGenerator(kb, index, config.candidates, profiles)
        self.visual = visual  # links faces in images; None: text only
        self.detector = make_detector(kb, config.mentions, config.spacy_model,  # for documents without spans
                                      config.lowercase_mentions)

    @classmethod
    def load(cls, home: str | os.PathLike | None = None, kb: str = DEFAULT_KB,
             model: str | os.PathLike | None = None, face_model: str | os.PathLike | None = None,
             overrides: Mapping[str, object] | None = None) -> Linker:
        """Open KB `kb` under the data home with its text index, a trained reranker and the
        linker config saved with it (`overrides`: dotted keys, e.g. `{"joint": False,
        "visual.alpha": 0.3}`, see `LinkerConfig`). Only reads: nothing is built or written.

        `model`: reranker path (without suffix); default `<home>/models/reranker` when trained
        there, else the model shipped with the package. When the KB has a face index, faces
        are linked too (`linker.visual`), with the encoder that built it (`face_model`: a
        trained face transformer folder, default `<home>/models/face-transformer`).
        """
        from indexer.dense import load_text_index
        from indexer.static import load_context_encoder
        from linker.profiles import load_profiles
        from linker.reranker import load_model

        store = KnowledgeBase(kb_path(home, kb))
        reranker, config = load_model(model_path(home, model))
        config = config.override(overrides or {})
        folder = kb_dir(home, kb)
        index = load_text_index(store, folder, device=config.index_device)
        encoder = load_context_encoder(context_model_id(reranker.config.text_model, index), store, folder)
        visual = None
        if (folder / "faces.faiss").is_file():
            from linker.visual import VisualLinker

            visual = VisualLinker.load(store, folder, face_model=face_model, home=home, config=config.visual,
                                       nil_threshold=config.nil_cutoff, nil_lead=config.nil_lead,
                                       calibration=config.calibration)
        linker = cls(store, index, encoder, reranker, config, visual, load_profiles(store, folder))
        # loading leaves a few hundred thousand new objects (torch, tokenizers) for the garbage
        # collector; one full collection now, not inside the first documents linked (~0.1 s)
        gc.collect()
        return linker

    def mentions_of(self, doc: Document) -> tuple[TextMention, ...]:
        return doc.mentions if doc.mentions is not None else tuple(self.detector(doc.text))

    def link(self, doc: Document) -> list[Link]:
        """Links for the text mentions of one document."""
        return next(iter(self.link_many([doc], batch_size=1)))

    def link_many(self, docs: Iterable[Document], batch_size: int | None = None) -> Iterator[list[Link]]:
        """Links (text, then faces) per document, in input order."""
        for linked in self.process(docs, batch_size):
            yield list(linked.links)

    def process(self, docs: Iterable[Document], batch_size: int | None = None) -> Iterator[LinkedDocument]:
        """Text links, face links and image warnings per document, in input order.

        Documents are processed `batch_size` (default: the config's) at a time; faces are linked
        per document and, unless the config's `joint` is off, text and faces are disambiguated
        jointly (`linker.visual`).
        """
        batch: list[Document] = []
        batch_size = batch_size or self.config.batch_size

        def flush():
            for doc, ranked in zip(batch, self._rank_batch(batch)):
                text_links = [link for link, _ in ranked]
                if self.visual is None or not doc.images:
                    yield LinkedDocument(doc, tuple(text_links))
                    continue
                text_links, face_links, warnings = self.visual.link(doc, text_links, joint=self.config.joint)
                yield LinkedDocument(doc, tuple(text_links) + tuple(face_links), tuple(warnings))

        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from flush()
                batch = []
        if batch:
            yield from flush()

    def rank_many(
        self, docs: Iterable[Document], batch_size: int | None = None
    ) -> Iterator[list[tuple[Link, list[str]]]]:
        """Per document, per mention: the link and the full ranking of entity ids (the reranked
        candidates, then the rest of the top-30 prior pool) for recall@k."""
        batch: list[Document] = []
        batch_size = batch_size or self.config.batch_size
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._rank_batch(batch)
                batch = []
        if batch:
            yield from self._rank_batch(batch)

    def _rank_batch(self, docs: list[Document]) -> list[list[tuple[Link, list[str]]]]:
        mentions = [self.mentions_of(d) for d in docs]
        batch = featurize(docs, mentions, self.generator, self.encoder)
        with torch.inference_mode():
            feats = batch.feats if self._columns is None else batch.feats[..., self._columns]
            scores = self.reranker(feats, batch.cands, batch.ctx, batch.cand_mask, batch.mention_mask)
        scores = scores.tolist()  # Python floats: reading tensor elements one by one is slow
        return [
            [self._decide(mc, scores[b][i]) for i, mc in enumerate(doc_cands)]
            for b, doc_cands in enumerate(batch.candidates)
        ]

    def _decide(self, mc: MentionCandidates, scores: list[float]) -> tuple[Link, list[str]]:
        """The link (NIL under the threshold) and the ranking of every candidate, best first."""
        order = sorted(range(len(mc.idxs)), key=lambda c: -scores[c])
        cands = tuple(
            Candidate(entity=mc.entities[c].id, name=mc.entities[c].name, score=scores[c], prior=mc.priors[c])
            for c in order
        )
        best = cands[0] if cands else None
        d = ranked_decision([c.score for c in cands[:2]], self.config.nil_lead)
        entity = best.entity if best and d >= self.config.nil_cutoff else None
        cal = self.config.calibration
        link = Link(mention=mc.mention, entity=entity, score=best.score if best else 0.0, candidates=cands,
                    confidence=(cal.confidence(d) if best else 0.0) if cal else None)
        return link, [c.entity for c in cands]
