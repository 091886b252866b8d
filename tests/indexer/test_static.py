import numpy as np
import pytest

from indexer.static import StaticTextEncoder, load_context_encoder
from indexer.text import load_tokenizer


class TinyTransformer:
    """A random 1-layer BERT with the bundled MiniLM tokenizer: distils in seconds."""

    def __init__(self):
        import torch
        from transformers import BertConfig, BertModel

        torch.manual_seed(0)
        self.tokenizer = load_tokenizer(None)
        cfg = BertConfig(vocab_size=len(self.tokenizer), hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=32)
        self.model = BertModel(cfg).eval()
        self.dim, self.device, self.model_id = 16, "cpu", "tiny-bert"


@pytest.fixture(scope="module")
def static():
    corpus = ["the president of the united states", "the actor", "the singer of the band"] * 10
    return StaticTextEncoder.distill(TinyTransformer(), corpus, batch_size=4096, progress=False)


def test_encode_is_normalised_and_deterministic(static):
    v = static.encode(["Barack Obama in 2009", "Obama at the rally", "", "a football club"])
    assert v.shape == (4, 16) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v[[0, 1, 3]], axis=1), 1.0, atol=1e-5)
    assert not v[2].any()  # an empty text has no tokens
    assert np.array_equal(v, static.encode(["Barack Obama in 2009", "Obama at the rally", "", "a football club"]))
    assert static.model_id == "static:tiny-bert"


def test_frequent_tokens_weigh_less(static):
    tok = static.tokenizer
    the, obama = tok.convert_tokens_to_ids(["the", "obama"])
    assert static.weights[the] < 0.5 < static.weights[obama] == 1.0
    # "the" barely moves a text's vector
    a, b = static.encode(["obama", "the obama"])
    assert float(a @ b) > 0.95


def test_save_load_round_trip(static, tmp_path):
    static.save(tmp_path / "ctx")
    again = StaticTextEncoder.load(tmp_path / "ctx", tokenizer=static.tokenizer)
    texts = ["Chuck Norris in 1976", "Idol performing"]
    assert np.allclose(again.encode(texts), static.encode(texts), atol=1e-3)  # float16 storage


def test_non_static_ids_load_text_encoders(tmp_path):
    enc = load_context_encoder("hashing:32", kb=None, kb_dir=tmp_path)
    assert enc.dim == 32


def test_loading_never_distils(tiny_kb_path, tmp_path):
    """Loading only reads: a KB folder without a distilled encoder is a clear error, and nothing is written."""
    import pytest

    from kb.errors import ModelLoadError
    from kb.store import KnowledgeBase

    with pytest.raises(ModelLoadError, match="mmel kb index"):
        load_context_encoder("static:sentence-transformers/all-MiniLM-L6-v2", KnowledgeBase(tiny_kb_path), tmp_path)
    assert list(tmp_path.iterdir()) == []
