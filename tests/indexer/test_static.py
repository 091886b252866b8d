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
    return StaticTextEncoder.distill(TinyTransformer())


def test_encode_is_normalised_and_deterministic(static):
    texts = ["Barack Obama in 2009", "Obama at the rally", "", "a football club"]
    v = static.encode(texts)
    assert v.shape == (4, 16) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v[[0, 1, 3]], axis=1), 1.0, atol=1e-5)
    assert not v[2].any()  # an empty text has no tokens
    assert np.array_equal(v, static.encode(texts))
    assert static.model_id == "static:tiny-bert" and static.encode([]).shape == (0, 16)


def test_the_distilled_vectors_are_the_transformers_token_vectors(static):
    """No PCA: a one-token text is the transformer's own (mean-pooled) output for that token,
    so contexts are comparable with entity vectors the transformer embedded."""
    import torch

    tiny = TinyTransformer()
    tid = tiny.tokenizer.convert_tokens_to_ids("obama")
    seq = torch.tensor([[tiny.tokenizer.cls_token_id, tid, tiny.tokenizer.sep_token_id]])
    with torch.inference_mode():
        ref = tiny.model(input_ids=seq, attention_mask=torch.ones_like(seq)).last_hidden_state.mean(1)[0].numpy()
    assert float(static.encode(["obama"])[0] @ (ref / np.linalg.norm(ref))) > 0.99


def test_save_load_round_trip(static, tmp_path):
    static.save(tmp_path / "ctx")
    again = StaticTextEncoder.load(tmp_path / "ctx", static.base_model_id)
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


def test_the_distilled_encoder_is_kept_per_transformer_and_reused(tiny_kb_path, tmp_path, monkeypatch):
    """With a cache folder, the second KB (or re-index) copies the distilled encoder instead of
    distilling again, and the copy encodes the same."""
    from indexer.static import build_context_encoder
    from kb.store import KnowledgeBase

    kb = KnowledgeBase(tiny_kb_path)
    tiny = TinyTransformer()
    tiny.cache_dir, tiny.fingerprint = tmp_path / "models", "0123abcd"
    build_context_encoder(kb, tiny, tmp_path / "one")
    assert (tmp_path / "models" / "context-0123abcd" / ".complete").is_file()

    def distil_again(cls, transformer, **kwargs):
        raise AssertionError("distilled again")

    monkeypatch.setattr(StaticTextEncoder, "distill", classmethod(distil_again))
    build_context_encoder(kb, tiny, tmp_path / "two")
    one, two = (load_context_encoder("static:tiny-bert", kb, tmp_path / name) for name in ("one", "two"))
    texts = ["Karl Friedrich von Gaertner was a botanist.", "Oscar II"]
    assert np.array_equal(one.encode(texts), two.encode(texts))
    tiny.fingerprint = "other"  # another transformer's weights: not the cached one
    with pytest.raises(AssertionError, match="distilled again"):
        build_context_encoder(kb, tiny, tmp_path / "three")


def test_no_progress_silences_the_distillation_bar(capfd):
    StaticTextEncoder.distill(TinyTransformer(), progress=False)
    assert "Encoding tokens" not in capfd.readouterr().err
    StaticTextEncoder.distill(TinyTransformer(), progress=True)
    assert "Encoding tokens" in capfd.readouterr().err
