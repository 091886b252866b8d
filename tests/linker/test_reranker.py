import pytest
import torch

from linker.reranker import Reranker, RerankerConfig, load_model
from linker.training.train import DevMention, calibrate_nil


def _toy(seed=0, B=16, M=3, C=5, F=6, D=8):
    g = torch.Generator().manual_seed(seed)
    feats = torch.rand(B, M, C, F, generator=g)
    gold = torch.randint(0, C, (B, M), generator=g)
    # the gold candidate is the one with the largest feature 0 (learnable signal)
    feats[..., 0] = feats[..., 0] * 0.5
    feats.scatter_(2, gold[..., None, None].expand(B, M, 1, F)[..., :1].expand(B, M, 1, F), 1.0)
    cands = torch.randn(B, M, C, D, generator=g)
    ctx = torch.randn(B, M, D, generator=g)
    cmask = torch.ones(B, M, C, dtype=torch.bool)
    cmask[0, 0, -1] = False  # a padded candidate
    gold[0, 0] = min(int(gold[0, 0]), C - 2)
    mmask = torch.ones(B, M, dtype=torch.bool)
    if M > 2:
        mmask[1, 2] = False  # a padded mention
        gold[1, 2] = -1
    return feats, cands, ctx, cmask, mmask, gold


@pytest.mark.parametrize("rank", [0, 4])
def test_overfits_tiny_set_and_survives_save_load(tmp_path, rank):
    torch.manual_seed(0)
    feats, cands, ctx, cmask, mmask, gold = _toy()
    model = Reranker(RerankerConfig(n_features=feats.shape[-1], dim=cands.shape[-1], rank=rank))
    assert ("context_proj" in dict(model.named_parameters())) == (rank > 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = model.loss(model(feats, cands, ctx, cmask, mmask), gold, cmask)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        scores = model(feats, cands, ctx, cmask, mmask)
    assert float(loss) < first / 10
    valid = gold >= 0
    assert (scores.argmax(-1)[valid] == gold[valid]).float().mean() == 1.0
    assert scores[0, 0, -1] < -1e30  # padding never wins
    model.save(tmp_path / "rr")
    again, config = load_model(tmp_path / "rr")
    assert config.reranker == model.config
    with torch.no_grad():
        assert torch.equal(again(feats, cands, ctx, cmask, mmask), scores)


def test_coherence_only_acts_between_mentions():
    feats, cands, ctx, cmask, mmask, _ = _toy(B=2, M=2)
    model = Reranker(RerankerConfig(n_features=feats.shape[-1], dim=cands.shape[-1])).eval()
    with torch.no_grad():
        local = model.local_scores(feats, cands, ctx.unsqueeze(2).expand_as(cands))
        single = model(feats[:, :1], cands[:, :1], ctx[:, :1], cmask[:, :1], mmask[:, :1])
        pair = model(feats, cands, ctx, cmask, mmask)
    assert torch.allclose(single[cmask[:, :1]], local[:, :1][cmask[:, :1]])
    assert not torch.allclose(pair[cmask], local[cmask])


def test_calibrate_nil_separates_low_scores():
    # correct links score high, hidden-gold alternatives score low → τ between them
    rows = [DevMention((5.0 + i % 3, -2.0 - i % 2), gold=0) for i in range(200)]
    tau = calibrate_nil(rows, seed=1)
    assert -1.0 <= tau <= 5.0


def test_calibrate_nil_matches_a_search_over_every_cut():
    """The vectorised search picks the lowest threshold of the best accuracy, as trying every
    cut does; pooling several random hidings is the same search over more cases."""
    import random

    from linker.training.train import nil_cases

    rng = random.Random(3)
    rows = [DevMention(tuple(sorted((rng.gauss(1, 1) for _ in range(3)), reverse=True)), gold=rng.choice((0, 0, 0, 1, 2, -1)))
            for _ in range(300)]
    for lead in (0.0, 1.5):
        cases = nil_cases(rows, 0, draws=1, lead=lead)
        cuts = [float("-inf")] + sorted({c[0] for c in cases})
        acc = [sum((s >= t and ok) or (s < t and nil) for s, ok, nil in cases) for t in cuts]
        assert calibrate_nil(rows, seed=0, draws=1, lead=lead) == cuts[acc.index(max(acc))]
    assert calibrate_nil([], seed=0) == float("-inf")


def test_nil_gold_mentions_are_nil_cases_in_every_draw():
    from linker.training.train import nil_cases

    rows = [DevMention((3.0, 1.0), gold=0)] * 40 + [DevMention((0.5, 0.4), nil=True)] * 10
    cases = nil_cases(rows, seed=0, nil_rate=0.0, draws=3)
    assert sum(nil for _, _, nil in cases) == 30  # the 10 NIL golds, in each of 3 draws
    assert all(score == 0.5 and not ok for score, ok, nil in cases if nil)
    # real NIL golds scoring under every linked one: τ separates them, whatever the hidings
    assert 0.5 < calibrate_nil(rows, seed=0, nil_rate=0.0) <= 3.0


def test_a_hidden_gold_leaves_a_close_runner_up_and_the_lead_tells_it():
    """Right links at 0.5 and hidden-gold guesses at 0.5 look alike by the top score; the
    guesses only just beat their runner-up, so the lead separates them and `fit_nil` takes it."""
    from linker.calibration import decision_score, top_cutoff
    from linker.training.train import fit_nil, nil_cases

    rows = [DevMention((0.5, 0.3, 0.29), gold=0), DevMention((0.6, 0.5, 0.49), gold=0)] * 100
    lead, tau = fit_nil(rows, seed=0, nil_rate=0.5, leads=(0.0, 1.0))
    assert lead == 1.0
    cases = nil_cases(rows, seed=0, nil_rate=0.5, lead=lead)
    assert all((s >= tau) != nil for s, _, nil in cases)  # every decision right
    assert min(s for s, _, nil in nil_cases(rows, 0, 0.5, lead=0.0) if not nil) == 0.5  # the top score alone ties
    assert fit_nil(rows, seed=0, nil_rate=0.5, leads=(0.0,))[0] == 0.0
    assert decision_score(0.5, 0.3, 1.0) == pytest.approx(0.7) and decision_score(0.5, None, 1.0) == 0.5
    assert decision_score(top_cutoff(0.7, 0.3, 2.0), 0.3, 2.0) == pytest.approx(0.7)


def test_packed_candidate_vectors_score_as_padded():
    # featurize packs the vectors of the real pairs (N, D); the padded (B, M, C, D) form scores the same
    feats, cands, ctx, cmask, mmask, _ = _toy()
    model = Reranker(RerankerConfig(n_features=feats.shape[-1], dim=cands.shape[-1], rank=4)).eval()
    with torch.no_grad():
        padded = model(feats, cands, ctx, cmask, mmask)
        packed = model(feats, cands[cmask], ctx, cmask, mmask)
    assert torch.equal(packed, padded)
    with pytest.raises(ValueError, match="packed candidate vectors"):
        model(feats, cands[cmask][1:], ctx, cmask, mmask)
