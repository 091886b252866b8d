"""The linker's configuration: one frozen dataclass per component and `LinkerConfig` over them.

A trained model is two files: `<path>.safetensors` (the reranker's weights) and `<path>.json`,
the `LinkerConfig` it was trained and calibrated with (candidate generation, NIL threshold) plus
the run settings every front starts from (visual/OT, joint step, mention detection, threads,
batch size, index device). `mmel link`, `mmel serve`, `mmel evaluate`, the Python API
(`Linker.load`), the spaCy component, training and the benchmarks all build a linker from this one
object; a user changes it with dotted overrides (`--set visual.alpha=0.3`,
`Linker.load(..., overrides={"visual.alpha": 0.3})`), which are checked like the file itself.
Loading checks every key and type, and `linker.pipeline.check_compatible` checks the reranker's
feature names, dimension and context model against the index and encoder: a mismatch is a
`ConfigError`, never a silent difference (spaCy's `default_config` + `from_disk`, ReFinED's
`model_components/config.py`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from kb.errors import ConfigError, ModelLoadError
from kb.files import atomic_path
from kb.morphology import parse_rule
from linker.calibration import Calibration

MENTION_SOURCES = ("dict", "spacy", "both")
INDEX_DEVICES = ("cpu", "gpu")


@dataclass(frozen=True, slots=True)
class CandidateConfig:
    """Candidate generation (`linker.candidates`): `pool` entities read by prior per key, the
    first `top` kept as the ranked list; of those `keep_prior` by prior + `keep_context` by
    context (None: all); `dense_k` nearest entities by context and `surface_k` by the mention's
    surface alone (general dev, bundled static encoder: gold in the surface's 10 nearest for 84 %
    of the mentions whose gold no prior, fuzzy or context search found; 20 rather than 10,
    retrained with the `dense_gap`/`surface_gap` features: general dev recall@30 98.6 → 99.05,
    Richpedia dev part Hits@1 98.70 → 98.85, general 93.96 → 93.81, WikiMEL 91.41 → 91.49), searched with HNSW breadth
    `dense_ef_search` (None: the index's own, 128; 64 measured as accurate on both dev sets, WikiMEL
    Hits@1 0.9020 vs 0.9016, Richpedia 0.9755 vs 0.9760, and 14–44 % faster linking); `fuzzy_k`
    fuzzy keys at `fuzzy_cutoff` for unknown surfaces (82: "Pyriev" finds "Pyryev", 83.3; at 88
    recall@30 on WikiMEL dev was 0.9938 against 0.9957), and the most entities a word of an
    unknown surface may name to be looked up on its own ("Salza"). Entities of equal prior are ranked by
    cos(context, entity) + `popularity` × `description_length` (0.3: WikiMEL dev recall@30 on the
    merged KB 0.9941 against 0.9922 at 0: one Johnson among a hundred). `top` 50 rather than 30:
    0.9953 there against 0.9941 (0.9949 at 40), dev Hits@1 within two mentions on both sets and
    no measurable cost in speed. `suffix_rules`: the word-ending rewrites ("ical>y": "astronomical"
    → Astronomy) training learned from its KBs' links (`kb.morphology`): an unknown surface is
    looked up by them, and the reranker's `suffix_rewrite` feature reads them."""

    pool: int = 500
    top: int = 50
    keep_prior: int | None = None
    keep_context: int = 3
    dense_k: int = 10
    surface_k: int = 20
    dense_ef_search: int | None = 64
    fuzzy_k: int = 3
    fuzzy_cutoff: float = 82.0
    popularity: float = 0.3
    suffix_rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RerankerConfig:
    """The reranker's shape and what it was trained on (fixed by its weights)."""

    n_features: int
    dim: int
    # the local MLP's width. 128 against 64, five training seeds each ("both" row of
    # benchmarks/cross.py): mean dev Hits@1 general 93.86 → 93.90, WikiMEL 91.50 → 91.65, Richpedia
    # 98.63 → 98.71 (all within the seeds' spread), news probe (its first 87 links) 77.6 → 76.2 right: kept at 64
    hidden: int = 64
    relations: int = 3
    rounds: int = 2
    margin: float = 0.01
    feature_names: tuple[str, ...] = ()
    text_model: str = ""  # the context encoder it was trained with
    rank: int = 0  # width of the learned low-rank context–entity interaction (0: none)


@dataclass(frozen=True, slots=True)
class VisualConfig:
    r"""Face candidate retrieval, NIL threshold and the joint (OT) step (`linker.visual`).

    `k`: face candidates per face; `threshold`: same-person distance (None: the encoder's, dlib
    0.6); `scale`: distance temperature :math:`s`; `text_temperature`: :math:`\theta` for reranker
    scores; `alpha`, `epsilon`, `mass`, `weight`: see `linker.ot.joint_rescore`.
    """

    k: int = 10
    threshold: float | None = None
    scale: float = 0.05
    text_temperature: float = 1.0
    alpha: float = 0.5
    epsilon: float = 0.02
    mass: float = 1.0
    weight: float = 0.4


@dataclass(frozen=True, slots=True)
class LinkerConfig:
    """Everything that decides how a linker links. `reranker` is fixed by the weights;
    `candidates`, `nil_threshold` (a decision score, `linker.calibration.decision_score`: the
    top score plus `nil_lead` times its lead over the runner-up; None: never NIL) and
    `calibration` (decision score → confidence; None: links carry no confidence) come from
    training; the rest are run settings.

    `joint`: decide text and faces jointly (OT) when a document has images; `mentions`: how
    documents without spans get them (dict, spacy or both), `spacy_model` for spacy/both,
    `lowercase_mentions` whether the dictionary spotter proposes lower-case spans (None: decided
    by the KB, `linker.mentions.wants_lower_spans`);
    `threads`: torch/FAISS threads (0: the libraries' default); `batch_size`: documents per
    batch; `index_device`: where the text index is searched (cpu or gpu).
    """

    reranker: RerankerConfig
    candidates: CandidateConfig = CandidateConfig()
    nil_threshold: float | None = None
    nil_lead: float = 0.0
    calibration: Calibration | None = None
    visual: VisualConfig = VisualConfig()
    joint: bool = True
    mentions: str = "dict"
    spacy_model: str | None = None
    lowercase_mentions: bool | None = None
    threads: int = 1
    batch_size: int = 64
    index_device: str = "cpu"

    def __post_init__(self) -> None:
        _check_ranges(self)

    @property
    def nil_cutoff(self) -> float:
        """The decision score under which a mention is NIL (-inf when there is no NIL threshold)."""
        return float("-inf") if self.nil_threshold is None else self.nil_threshold

    @property
    def nil_confidence(self) -> float | None:
        """The NIL threshold as a confidence: a mention is NIL when its best candidate's
        confidence is under it (None without calibration; 0.0 when there is no NIL threshold)."""
        if self.calibration is None:
            return None
        return 0.0 if self.nil_threshold is None else self.calibration.confidence(self.nil_threshold)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping) -> LinkerConfig:
        """The config in `raw` (as `to_dict` writes it); unknown keys and wrong types raise
        ConfigError naming the key. A file of the earlier layout (the reranker's settings with
        `nil_threshold` and `candidates` beside them) is read too."""
        if isinstance(raw, Mapping) and "reranker" not in raw and "n_features" in raw:
            raw = dict(raw)
            top = {k: raw.pop(k) for k in ("nil_threshold", "candidates") if k in raw}
            raw = {"reranker": raw, **top}
        if isinstance(raw, Mapping) and isinstance(raw.get("nil_threshold"), float) and raw["nil_threshold"] == float("-inf"):
            raw = {**raw, "nil_threshold": None}  # how files before the config wrote "never NIL"
        return _build(cls, raw, "")

    def override(self, overrides: Mapping[str, object]) -> LinkerConfig:
        """A copy with dotted keys replaced: `{"visual.alpha": 0.3, "joint": False}`.
        The reranker's settings are fixed by its weights and cannot be overridden."""
        raw = self.to_dict()
        for key, value in overrides.items():
            *parents, leaf = key.split(".")
            if parents[:1] == ["reranker"] or key == "reranker":
                raise ConfigError(f"cannot override {key!r}: the reranker's settings are fixed by its weights")
            node = raw
            for i, part in enumerate(parents):
                node = node.get(part) if isinstance(node, dict) else None
                if not isinstance(node, dict):
                    raise ConfigError(f"unknown setting {'.'.join(parents[: i + 1])!r}: {_valid(raw)}")
            if leaf not in node or isinstance(node[leaf], dict):
                raise ConfigError(f"unknown setting {key!r}: {_valid(raw)}")
            node[leaf] = value
        return _build(type(self), raw, "")

    def save(self, path: str | os.PathLike) -> Path:
        """Write `<path>.json` atomically."""
        out = Path(path).with_suffix(".json")
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            Path(tmp).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> LinkerConfig:
        """Read `<path>.json` (ModelLoadError when missing or not JSON, ConfigError when invalid)."""
        file = Path(path).with_suffix(".json")
        if not file.is_file():
            raise ModelLoadError(f"no linker config at {file}")
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeError) as exc:
            raise ModelLoadError(f"cannot read linker config {file}: {exc}") from None
        try:
            return cls.from_dict(raw)
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc}") from None


def parse_overrides(pairs: Iterable[str]) -> dict[str, object]:
    """`["visual.alpha=0.3", "spacy_model=en_core_web_sm"]` → `{"visual.alpha": 0.3, ...}`:
    each value is read as JSON (numbers, true/false, null) or else taken as a string."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad setting {pair!r}: use KEY=VALUE, e.g. visual.alpha=0.3")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


# -- checking -----------------------------------------------------------------------------------

#: (dotted key, lowest, highest) for the numeric settings; None: unbounded.
RANGES = (
    ("candidates.pool", 1, None), ("candidates.top", 1, None), ("candidates.keep_prior", 0, None),
    ("candidates.keep_context", 0, None), ("candidates.dense_k", 0, 1024), ("candidates.surface_k", 0, 1024), ("candidates.dense_ef_search", 1, 4096), ("candidates.fuzzy_k", 0, None),
    ("candidates.fuzzy_cutoff", 0, 100), ("candidates.popularity", 0, None), ("visual.k", 1, 1024), ("visual.threshold", 0, None),
    ("visual.scale", 1e-9, None), ("visual.text_temperature", 1e-9, None), ("visual.alpha", 0, 1),
    ("visual.epsilon", 1e-9, None), ("visual.mass", 1e-9, 1), ("visual.weight", 0, None),
    ("threads", 0, 1024), ("batch_size", 1, 65536), ("nil_threshold", -1e30, 1e30), ("nil_lead", 0, 1000), ("reranker.rank", 0, 4096),
)
CHOICES = (("mentions", "mention source", MENTION_SOURCES), ("index_device", "index device", INDEX_DEVICES))


def _get(config, key: str):
    for part in key.split("."):
        config = getattr(config, part)
    return config


def _check_ranges(config: LinkerConfig) -> None:
    for key, lo, hi in RANGES:
        value = _get(config, key)
        if value is None:
            continue
        if (lo is not None and value < lo) or (hi is not None and value > hi) or value != value:
            bounds = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise ConfigError(f"{key} must be {bounds}, got {value!r}")
    for key, what, choices in CHOICES:
        if _get(config, key) not in choices:
            raise ConfigError(f"unknown {what} {_get(config, key)!r} ({key}): choose one of {', '.join(choices)}")
    for rule in config.candidates.suffix_rules:
        try:
            parse_rule(rule)
        except ValueError as exc:
            raise ConfigError(f"candidates.suffix_rules: {exc}") from None
    if config.mentions == "dict" and config.spacy_model:
        raise ConfigError(f"spacy model {config.spacy_model!r} needs mentions spacy or both (got dict)")


def _valid(raw: dict) -> str:
    """"valid are a, b.c, ...": the dotted keys a user may set (not the reranker's)."""
    def keys(node: dict, prefix: str) -> list[str]:
        return [k for key, value in node.items() if key != "reranker"
                for k in (keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key])]

    return "valid are " + ", ".join(keys(raw, ""))


def _build(cls, raw, where: str):
    """An instance of dataclass `cls` from a JSON-like mapping, with every value type-checked."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where.rstrip('.') or 'the config'} must be an object, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(f"unknown setting {where + unknown[0]!r}: valid are {', '.join(where + n for n in names)}")
    missing = [f.name for f in fields(cls) if f.name not in raw
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"missing setting {where + missing[0]!r}")
    return cls(**{k: _value(hints[k], v, where + k) for k, v in raw.items()})


def _value(hint, value, key: str):
    """`value` as type `hint` (a dataclass, bool, int, float, str, tuple[str, ...] or X | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    kind = next(o for o in options if o is not type(None))
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, key + ".")
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    if typing.get_origin(kind) is tuple and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    name = getattr(kind, "__name__", str(kind)) + (" or null" if type(None) in options else "")
    raise ConfigError(f"{key} must be {name}, got {value!r}")

