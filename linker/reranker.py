"""The neural reranker: local (mention, candidate) scores plus MulRel-style global coherence.

Local score of candidate e for mention i:
    s_i(e) = MLP([φ(i, e); c_i^T diag(w) e; (U^T c_i)^T (V^T e)]),
with φ the hand-built features (`linker.features`), c_i the context embedding, e the entity
embedding and U, V (D × r) a learned rank-r interaction (config `rank`; absent when 0): it lets
words of the context weigh parts of the entity text ("publicity photo" → an actor's
occupation), which the diagonal product of two different encoders cannot. Global coherence (Le & Titov 2018, "rel-norm" with K latent relations): with
q_j = softmax(s_j) over mention j's candidates and ē_j = Σ_e q_j(e) e,
    α_ijk = softmax_k( c_i^T diag(d_k) c_j / √D ),
    g_i(e) = 1/(n-1) Σ_{j≠i} Σ_k α_ijk · e^T diag(r_k) ē_j,
and the final score is s_i(e) + λ g_i(e), iterated `rounds` times (mean-field in place of LBP).
Trained with a multi-class margin ranking loss (margin 0.01, as in MulRel/REL/M3EL).
Weights are saved as safetensors with a JSON config; no pickle.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from kb.errors import ModelLoadError
from linker.config import LinkerConfig, RerankerConfig


class Reranker(nn.Module):
    def __init__(self, config: RerankerConfig):
        super().__init__()
        self.config = config
        d, k = config.dim, config.relations
        self.bilinear = nn.Parameter(torch.ones(d))
        self.local = nn.Sequential(
            nn.Linear(config.n_features + 1 + (config.rank > 0), config.hidden), nn.ReLU(), nn.Linear(config.hidden, 1)
        )
        gen = torch.Generator().manual_seed(0)
        if config.rank:
            self.context_proj = nn.Parameter(0.05 * torch.randn(d, config.rank, generator=gen))
            self.entity_proj = nn.Parameter(0.05 * torch.randn(d, config.rank, generator=gen))
        self.relation = nn.Parameter(1 + 0.1 * torch.randn(k, d, generator=gen))
        self.attention = nn.Parameter(1 + 0.1 * torch.randn(k, d, generator=gen))
        self.coherence = nn.Parameter(torch.tensor(0.5))

    def local_scores(self, feats, cands, ctx):
        """feats (..., F), cands (..., D) and ctx (..., D) of the same mention–candidate pairs → (...)."""
        sims = [(cands * self.bilinear * ctx).sum(-1, keepdim=True)]
        if self.config.rank:
            sims.append(((ctx @ self.context_proj) * (cands @ self.entity_proj)).sum(-1, keepdim=True))
        return self.local(torch.cat([feats, *sims], -1)).squeeze(-1)

    def forward(self, feats, cands, ctx, cand_mask, mention_mask):
        """Final scores (B,M,C); padded candidates get -inf. `cands`: the entity vectors, padded
        (B,M,C,D) or packed (N,D): those of the N real pairs of `cand_mask`, in its row-major order.

        Products with the D-dimensional embeddings are taken over the real pairs only: batches
        of short documents are mostly padding.
        """
        neg = torch.finfo(feats.dtype).min
        B, M, C = cand_mask.shape
        pairs = cand_mask.nonzero(as_tuple=True)  # (b, m, c) of each real pair
        mention = pairs[0] * M + pairs[1]  # its mention's row in (B·M, ...)
        ents = cands[pairs] if cands.dim() == 4 else cands  # (N, D)
        if ents.shape[0] != mention.shape[0]:
            raise ValueError(f"{ents.shape[0]} packed candidate vectors for {mention.shape[0]} candidates")
        local = self.local_scores(feats[pairs], ents, ctx[pairs[:2]])
        scores = feats.new_full((B, M, C), neg).index_put(pairs, local)
        if M < 2:
            return scores
        # α_ijk: attention over K relations between mention contexts (rel-norm)
        att = torch.einsum("bid,kd,bjd->bijk", ctx, self.attention, ctx) / math.sqrt(ctx.shape[-1])
        alpha = att.softmax(-1)
        pair = mention_mask.unsqueeze(2) & mention_mask.unsqueeze(1)
        pair = pair & ~torch.eye(M, dtype=torch.bool, device=feats.device)
        others = pair.sum(-1).clamp(min=1).unsqueeze(-1)  # (B,M,1)
        alpha = alpha * pair.unsqueeze(-1)
        for _ in range(self.config.rounds):
            q = scores.softmax(-1)[pairs]  # (N,)
            ebar = ents.new_zeros(B * M, ents.shape[-1]).index_add(0, mention, q.unsqueeze(-1) * ents)
            # g_i(e) = Σ_j Σ_k α_ijk e^T diag(r_k) ē_j = e · w_i with w_i = Σ_j Σ_k α_ijk diag(r_k) ē_j
            rel_ebar = (ebar.view(B, M, 1, -1) * self.relation).flatten(1, 2)  # (B, M·K, D): diag(r_k) ē_j
            w = (torch.bmm(alpha.flatten(2), rel_ebar) / others).flatten(0, 1)  # (B·M, D)
            g = (ents * w[mention]).sum(-1)
            scores = feats.new_full((B, M, C), neg).index_put(pairs, local + self.coherence * g)
        return scores

    def loss(self, scores, gold, cand_mask):
        """Margin ranking loss Σ_{e≠gold} max(0, margin − s(gold) + s(e)), mean over mentions with a gold."""
        has = gold >= 0
        if not has.any():
            return scores.sum() * 0
        s = scores[has]
        g = gold[has]
        m = cand_mask[has]
        s_gold = s.gather(1, g.unsqueeze(1))
        viol = (self.config.margin - s_gold + s).clamp(min=0)
        viol = viol.masked_fill(~m, 0).scatter(1, g.unsqueeze(1), 0)
        return viol.sum(1).mean()

    def save(self, path: str | os.PathLike, config: LinkerConfig | None = None) -> None:
        """Write the weights to `<path>.safetensors` and the linker config they go with to
        `<path>.json` (default: this reranker's, with default candidate and run settings)."""
        config = config or LinkerConfig(self.config)
        if config.reranker != self.config:
            raise ValueError("the linker config describes another reranker than the one saved")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(path.with_suffix(".safetensors")))
        config.save(path)


def load_model(path: str | os.PathLike) -> tuple[Reranker, LinkerConfig]:
    """The reranker saved at `path` (without suffix) and the linker config saved with it."""
    path = Path(path)
    weights = path.with_suffix(".safetensors")
    if not weights.is_file() or not path.with_suffix(".json").is_file():
        raise ModelLoadError(f"no reranker at {path} (expected {path.name}.json and {weights.name})")
    config = LinkerConfig.load(path)
    try:
        model = Reranker(config.reranker)
        model.load_state_dict(load_file(str(weights)))
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load reranker {path}: {exc}") from None
    return model.eval(), config
