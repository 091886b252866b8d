"""Training the reranker on labelled JSONL (`{"id","text","mentions":[{start,end,qid}]}`).

Features are computed once per document chunk by the same `featurize` the linker uses, then the
model is trained with the margin ranking loss; the model kept is the average of its weights after
each epoch from `average_from` on (stochastic weight averaging, Izmailov et al. 2018): one epoch's
dev Hits@1 swings by ±0.5 points, the average's much less, and no epoch is picked on dev. The
NIL threshold is calibrated on dev by hiding the gold candidate of a random 5 % of the
mentions (they become NIL; five random draws pooled) and choosing the cut-off of the decision
score (`linker.calibration.decision_score`: the top score plus a weight times its lead over the
runner-up, the weight chosen with it from `NIL_LEADS`) with the best accuracy; the confidence
(Platt scaling of the decision score) is fitted on the same dev mentions, right or wrong as they are.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from kb.aliases import base_name
from kb.errors import ConfigError
from kb.morphology import learn_suffix_rules
from kb.normalize import mention_key
from kb.store import KnowledgeBase
from linker.calibration import fit_calibration, ranked_decision, reliability
from linker.candidates import CandidateGenerator
from linker.config import CandidateConfig, LinkerConfig, RerankerConfig
from linker.training.evaluate import Metrics, mention_record
from linker.training.labelled import read_labelled, read_labelled_files
from linker.features import FEATURES
from linker.pipeline import featurize
from linker.reranker import Reranker

log = logging.getLogger(__name__)

RANK = 32  # the reranker's context–entity interaction width: +1 WikiMEL dev Hits@1 over none; 64, 128 no better


def _chunks(generator, encoder, data, chunk: int, progress: bool, desc: str):
    """Featurized chunks with the gold ids and gold candidate positions (-1: gold not among
    the candidates, or NIL)."""
    out = []
    for lo in tqdm(range(0, len(data), chunk), desc=desc, disable=not progress, unit=" chunks"):
        part = data[lo : lo + chunk]
        docs = [d for d, _ in part]
        batch = featurize(docs, [d.mentions for d in docs], generator, encoder)
        gold = torch.full(batch.mention_mask.shape, -1, dtype=torch.long)
        for b, ((_, qids), doc_cands) in enumerate(zip(part, batch.candidates)):
            for i, (qid, mc) in enumerate(zip(qids, doc_cands)):
                ids = [e.id for e in mc.entities]
                gold[b, i] = ids.index(qid) if qid in ids else -1
        out.append((batch, gold, [qids for _, qids in part]))
    return out


@dataclass(frozen=True, slots=True)
class DevMention:
    """A dev mention as NIL calibration sees it: its candidates' scores, best first, and where its gold is."""

    scores: tuple[float, ...]
    gold: int = -1  # position of the gold in `scores` (-1: not among them, or NIL)
    nil: bool = False  # the gold is NIL (e.g. an anchor to an article outside the KB)

    @property
    def correct(self) -> bool:
        return self.gold == 0

    def decision(self, lead: float, hide_gold: bool = False) -> float:
        """`decision_score` of the top candidates (without the gold when `hide_gold`); -inf without any."""
        s = [x for c, x in enumerate(self.scores) if c != self.gold] if hide_gold else self.scores
        return ranked_decision(s, lead)


def _score(model, chunks) -> tuple[Metrics, list[DevMention]]:
    """The dev metrics of the top-scored candidates (no NIL), and the mentions for NIL calibration."""
    model.eval()
    records, rows = [], []
    with torch.inference_mode():
        for batch, gold, qids in chunks:
            s = model(batch.feats, batch.cands, batch.ctx, batch.cand_mask, batch.mention_mask)
            for b, i in batch.mention_mask.nonzero().tolist():
                g = int(gold[b, i])
                sc = s[b, i][batch.cand_mask[b, i]].tolist()
                order = sorted(range(len(sc)), key=lambda c: -sc[c])
                ranking = [batch.candidates[b][i].entities[c].id for c in order]
                records.append(mention_record(qids[b][i], ranking, ranking[0] if ranking else None))
                rows.append(DevMention(tuple(sc[c] for c in order), order.index(g) if g >= 0 else -1,
                                       qids[b][i] is None))
    return Metrics(tuple(records)), rows


NIL_DRAWS = 5  # random hidings pooled to calibrate and report NIL
# share of dev mentions whose gold is hidden to calibrate NIL: the trade-off between in-KB
# mentions left NIL and NIL found. Chosen on the dev sets (bundled model 05ce72c, WikiMEL dev /
# Richpedia dev part / general dev: F1 and in-KB mentions decided NIL; general-nil dev: F1):
# top score alone at 0.15: .911 2.7 % / .977 2.5 % / .936 2.3 %, .621; with the lead, 0.15:
# .913 5.2 % / .981 2.7 % / .940 4.9 %, .689; 0.1: .914 4.6 % / .981 2.3 % / .941 3.9 %, .671;
# 0.05: .916 1.9 % / .983 1.1 % / .937 1.8 %, .616 (the rate kept: F1 up and in-KB NIL down on
# every in-KB set against the top score alone; general-nil about as before)
NIL_RATE = 0.05
NIL_LEADS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # weights of the top candidate's lead tried (`decision_score`)


def nil_cases(rows: Sequence[DevMention], seed: int = 0, nil_rate: float = NIL_RATE, draws: int = NIL_DRAWS,
              lead: float = 0.0) -> list[tuple[float, bool, bool]]:
    """Per mention `(decision score, correct if linked, correct if NIL)` when a random `nil_rate`
    of the mentions with a gold entity lose it: for a mention made NIL the linker sees only its
    non-gold candidates; for the others, all of them. A mention whose gold is NIL is a NIL case
    in every draw. `draws` random hidings (seeds `seed`, `seed` + 1, ...) are pooled."""
    out = []
    for k in range(draws):
        rng = random.Random(seed + k)
        for m in rows:
            if m.nil:
                out.append((m.decision(lead), False, True))
            elif rng.random() < nil_rate:
                out.append((m.decision(lead, hide_gold=True), False, True))
            else:
                out.append((m.decision(lead), m.correct, False))
    return out


def nil_scores(cases, tau: float) -> dict:
    """Accuracy, and precision/recall of the NIL decision (score < τ) against the hidden golds."""
    said_nil = [s < tau for s, _, _ in cases]
    is_nil = [nil for _, _, nil in cases]
    tp = sum(a and b for a, b in zip(said_nil, is_nil))
    return {
        "accuracy": sum((s >= tau and ok) or (s < tau and nil) for s, ok, nil in cases) / max(len(cases), 1),
        "nil_precision": tp / max(sum(said_nil), 1),
        "nil_recall": tp / max(sum(is_nil), 1),
        "nil_rate_without_hidden": sum(n for n, h in zip(said_nil, is_nil) if not h) / max(len(is_nil) - sum(is_nil), 1),
    }


def _best_cut(cases) -> tuple[float, int]:
    """The threshold τ with the most right decisions (NIL below τ) and their count; the lowest τ of a tie."""
    if not cases:
        return float("-inf"), 0
    score = np.array([c[0] for c in cases], np.float64)
    order = np.argsort(score, kind="stable")
    score = score[order]
    ok = np.array([c[1] for c in cases], np.int64)[order]
    nil = np.array([c[2] for c in cases], np.int64)[order]
    cum_ok, cum_nil = np.concatenate([[0], np.cumsum(ok)]), np.concatenate([[0], np.cumsum(nil)])
    cuts = np.concatenate([[-np.inf], np.unique(score[np.isfinite(score)])])
    below = np.searchsorted(score, cuts, side="left")  # cases with score < τ: said NIL
    correct = cum_nil[below] + (cum_ok[-1] - cum_ok[below])
    best = int(np.argmax(correct))
    return float(cuts[best]), int(correct[best])


def calibrate_nil(rows: Sequence[DevMention], seed: int = 0, nil_rate: float = NIL_RATE, draws: int = NIL_DRAWS,
                  lead: float = 0.0) -> float:
    """Decision-score threshold τ maximising accuracy when `nil_rate` of mentions lose their gold
    (`nil_cases`, over `draws` random hidings pooled, so that τ does not follow one draw's
    luck): a NIL mention is right iff its best non-gold decision score is < τ, another iff it
    ranks the gold first and its decision score is ≥ τ. The lowest τ of equal accuracy wins."""
    return _best_cut(nil_cases(rows, seed, nil_rate, draws, lead))[0]


def fit_nil(rows: Sequence[DevMention], seed: int = 0, nil_rate: float = NIL_RATE, draws: int = NIL_DRAWS,
            leads: Sequence[float] = NIL_LEADS) -> tuple[float, float]:
    """`(lead, τ)`: of `leads`, the weight whose `calibrate_nil` threshold decides the hidden
    cases best (the smallest of a tie), and that threshold."""
    best = None
    for lead in sorted(leads):
        tau, right = _best_cut(nil_cases(rows, seed, nil_rate, draws, lead))
        if best is None or right > best[2]:
            best = (lead, tau, right)
    return (best[0], best[1]) if best else (0.0, float("-inf"))


def _link_reliability(rows: Sequence[DevMention], lead: float, tau: float, calibration) -> dict:
    """`reliability` of the mentions linked (decision score ≥ τ): their confidence against being right."""
    linked = [(d, m.correct) for m in rows if (d := m.decision(lead)) >= tau]
    return reliability([calibration.confidence(d) for d, _ in linked], [ok for _, ok in linked])


@dataclass(frozen=True, slots=True)
class LabelledSource:
    """Labelled files and the KB their gold ids belong to: its store, text index and context
    encoder (`indexer.static.load_context_encoder`)."""

    kb: KnowledgeBase
    index: object
    encoder: object
    train: tuple[Path, ...] = ()
    dev: tuple[Path, ...] = ()
    repeat: int = 1  # passes over its training chunks per epoch (a small domain beside a large one)


def suffix_rules_of(kbs: Iterable[KnowledgeBase]) -> tuple[str, ...]:
    """The suffix rules (`kb.morphology`) of the links of these KBs together (each KB once):
    what the model's `suffix_rewrite` feature and unknown-surface lookups read. KBs built from
    entity lists alone have no links, and give none."""
    seen, pairs = set(), []
    for kb in kbs:
        if kb.path not in seen:
            seen.add(kb.path)
            pairs += [(m, mention_key(base_name(n))) for m, n in kb.linked_names()]
    return learn_suffix_rules(pairs)


def train_reranker(
    kb: KnowledgeBase, index, encoder, train_paths: Sequence[str | os.PathLike],
    dev_paths: Sequence[str | os.PathLike], out: str | os.PathLike, *,
    epochs: int = 8, lr: float = 3e-3, chunk: int = 128, seed: int = 0, rank: int = RANK, average_from: int = 3,
    candidates: CandidateConfig = CandidateConfig(), limit: int | None = None, progress: bool = True,
    extra: Sequence[LabelledSource] = (),
) -> dict:
    """Train on all `train_paths` (and those of the `extra` sources, each against its own KB:
    person captions and Wikipedia's links in one model), keep the average of the weights after
    epochs `average_from`.. `epochs` (fewer epochs: the last one), calibrate NIL on all dev files
    together, save the weights and their `LinkerConfig` (these `candidates`, the NIL threshold)
    to `out`; returns a report with per-dev-set Hits@1 (each epoch's, and the kept model's) and
    NIL precision/recall. Every source's index must have one dimension and its encoder one
    model id (the reranker is trained for one context space)."""
    torch.manual_seed(seed)
    started = time.time()
    sources = [LabelledSource(kb, index, encoder, tuple(map(Path, train_paths)), tuple(map(Path, dev_paths))), *extra]
    for s in sources[1:]:
        if s.index.dim != index.dim or getattr(s.encoder, "model_id", "") != getattr(encoder, "model_id", ""):
            raise ConfigError(f"training sources disagree: index dimension {s.index.dim} / context encoder "
                              f"{getattr(s.encoder, 'model_id', '')!r} against {index.dim} / "
                              f"{getattr(encoder, 'model_id', '')!r}")
    if not candidates.suffix_rules:
        candidates = dataclasses.replace(candidates, suffix_rules=suffix_rules_of(s.kb for s in sources))
        log.info("%d suffix rules learned from the training KBs' links", len(candidates.suffix_rules))
    train, devs = [], {}
    for s in sources:
        generator = CandidateGenerator(s.kb, s.index, candidates)
        train += s.repeat * _chunks(generator, s.encoder, read_labelled_files(s.train, limit), chunk, progress,
                                    "featurize train")
        for p in s.dev:
            devs[str(p)] = _chunks(generator, s.encoder, read_labelled(p, limit), chunk, progress, f"featurize {p.name}")
    cfg = RerankerConfig(n_features=len(FEATURES), dim=index.dim, feature_names=FEATURES,
                         text_model=getattr(encoder, "model_id", ""), rank=rank)
    model = Reranker(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = random.Random(seed)
    average, averaged = None, 0
    history = []
    for epoch in range(epochs):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        total = 0.0
        for k in tqdm(order, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, unit=" chunks"):
            batch, gold, _ = train[k]
            s = model(batch.feats, batch.cands, batch.ctx, batch.cand_mask, batch.mention_mask)
            loss = model.loss(s, gold, batch.cand_mask)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        if epoch + 1 >= min(average_from, epochs):  # running mean of the weights
            averaged += 1
            weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            average = weights if average is None else {k: average[k] + (weights[k] - average[k]) / averaged
                                                       for k in average}
        per_set = {p: _score(model, d)[0].hits_at_1 for p, d in devs.items()}
        history.append({"epoch": epoch + 1, "loss": total / max(len(train), 1),
                        "dev_hits_at_1": sum(per_set.values()) / len(per_set), "dev_sets": per_set})
        log.info("epoch %d: loss %.4f, dev Hits@1 %.4f %s", epoch + 1, history[-1]["loss"],
                 history[-1]["dev_hits_at_1"], per_set)
    model.load_state_dict(average)
    scored = {p: _score(model, d) for p, d in devs.items()}
    pooled = [r for _, rs in scored.values() for r in rs]
    lead, tau = fit_nil(pooled, seed)
    calibration = fit_calibration([m.decision(lead) for m in pooled], [m.correct for m in pooled])
    model.save(out, LinkerConfig(cfg, candidates=candidates, nil_threshold=tau if np.isfinite(tau) else None,
                                 nil_lead=lead, calibration=calibration))
    return {
        "out": str(out), "averaged_epochs": [epochs - averaged + 1, epochs],
        "dev_hits_at_1": sum(m.hits_at_1 for m, _ in scored.values()) / len(scored), "nil_threshold": tau, "nil_lead": lead, "nil_rate": NIL_RATE,
        "calibration": calibration.to_dict(),
        # NIL figures on other hidings than those that chose τ (seeds after the calibration's)
        "dev_sets": {p: {"hits_at_1": m.hits_at_1, "gold_nil": m.gold_nil,
                         **nil_scores(nil_cases(rs, seed + NIL_DRAWS, lead=lead), tau),
                         "reliability": _link_reliability(rs, lead, tau, calibration)}
                     for p, (m, rs) in scored.items()},
        "train_docs": sum(len(b.candidates) for b, _, _ in train),  # repeated chunks count each time
        "seconds": round(time.time() - started, 1),
        "history": history,
    }
