"""The pipeline's guards and helpers: a model on the wrong index, the context window."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kb.errors import ConfigError
from kb.types import Document, TextMention
from linker.features import FEATURES
from linker.pipeline import CONTEXT_CHARS, Linker, check_compatible, context_text, featurize
from linker.reranker import Reranker, RerankerConfig


def _config(**changes) -> RerankerConfig:
    return dataclasses.replace(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=FEATURES,
                                              text_model="hashing:64"), **changes)


@pytest.mark.parametrize("changes, message", [
    ({"dim": 384}, "expects 384-d embeddings, the text index has 64"),
    ({"text_model": "sentence-transformers/all-MiniLM-L6-v2"},
     "trained with context encoder 'sentence-transformers/all-MiniLM-L6-v2', this linker uses 'hashing:64'"),
    ({"n_features": len(FEATURES) + 1}, f"lists {len(FEATURES)} feature names for {len(FEATURES) + 1} features"),
    ({"feature_names": ("prior", "shoe_size"), "n_features": 2}, r"does not compute \(\['shoe_size'\]\)"),
])
def test_a_model_for_another_index_or_encoder_is_refused(tiny_linker, changes, message):
    check_compatible(_config(), tiny_linker.index, tiny_linker.encoder)  # the matching model passes
    with pytest.raises(ConfigError, match=message):
        check_compatible(_config(**changes), tiny_linker.index, tiny_linker.encoder)
    reranker = Reranker(_config(**changes))
    with pytest.raises(ConfigError, match=message):  # the linker runs the same guard
        Linker(tiny_linker.kb, tiny_linker.index, tiny_linker.encoder, reranker)


def test_loading_a_model_trained_on_another_index_is_refused(tmp_path):
    from tiny import build_tiny_linker

    build_tiny_linker(tmp_path)  # a 64-d hashing index
    Reranker(_config(dim=32)).save(tmp_path / "models" / "reranker")
    with pytest.raises(ConfigError, match="expects 32-d embeddings, the text index has 64"):
        Linker.load(tmp_path)


def test_context_window_of_a_long_text():
    text = "".join(f"w{i:04d} " for i in range(300))  # 1,800 characters
    m = TextMention(900, 905, text[900:905])
    assert context_text(text, m) == text[900 - CONTEXT_CHARS: 905 + CONTEXT_CHARS]
    near_start, near_end = TextMention(6, 11, text[6:11]), TextMention(1788, 1793, text[1788:1793])
    assert context_text(text, near_start) == text[: 11 + CONTEXT_CHARS]
    assert context_text(text, near_end) == text[1788 - CONTEXT_CHARS:]
    assert context_text(text[:600], m) == text[:600]  # up to 2 × 300 characters: the whole text
    assert context_text(text[:601], TextMention(0, 5, text[:5])) == text[:305]
    assert context_text(text, m, width=10) == text[890:915]


def test_mentions_far_apart_in_a_long_text_get_their_own_contexts(tiny_linker):
    filler = "The weather was mild and nothing else happened that day. " * 12  # 684 characters
    text = "Obama spoke. " + filler + "Merkel spoke."
    start = text.index("Merkel")
    doc_mentions = (TextMention(0, 5, "Obama"), TextMention(start, start + 6, "Merkel"))
    batch = featurize([Document("d", text)], [doc_mentions], tiny_linker.generator, tiny_linker.encoder)
    ctx = batch.ctx[0].numpy()
    expect = tiny_linker.encoder.encode([context_text(text, m) for m in doc_mentions])
    assert np.allclose(ctx, expect) and not np.allclose(ctx[0], ctx[1])
    short = featurize([Document("s", "Obama met Merkel.")], [(TextMention(0, 5, "Obama"), TextMention(10, 16, "Merkel"))],
                      tiny_linker.generator, tiny_linker.encoder).ctx[0].numpy()
    assert np.allclose(short[0], short[1])  # a short text is one context for all its mentions
