"""`benchmarks/run.py report` renders RESULTS.md and plots from fake JSON results (no models)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import report, run  # noqa: E402

MACHINE = {"git_revision": "abcdef1234567890", "date": "2026-01-02T03:04:05Z", "cpu_count": 2}


def _mel(hits: float) -> dict:
    recall = {"1": hits, "5": 0.8, "10": 0.85, "30": 0.9}
    return {"benchmark": "mel", **MACHINE, "hits_at_1": hits, "recall_at_k": recall, "micro_f1": 0.7,
            "mentions_per_second": 123.4, "latency_ms": {"p50": 10.0, "p95": 20.0}, "peak_rss_mb": 500.0,
            "mentions": 100, "config": {"kb": "/x/kb.jsonl", "test": "/x/dev.jsonl", "kb_entities": 10},
            "baselines": {"exact_name": {"hits_at_1": 0.4, "recall_at_k": {"1": 0.4, "5": 0.4, "10": 0.4, "30": 0.4},
                                         "micro_f1": 0.45}}}


def _latency() -> dict:
    lat = {"p50": 5.0, "p95": 9.0, "p99": 12.0, "mean": 6.0, "max": 13.0}
    return {"benchmark": "latency", "machine": {**MACHINE, "git_revision": "fedcba9876543210", "torch_threads": 2},
            "config": {"kb_name": "kb", "kb_entities": 10, "text_model": "hashing:64", "index_kind": "flat"},
            "by_batch_size": [{"batch_size": b, "documents": 64, "mentions_per_second": 10.0 * b,
                               "docs_per_second": 9.0 * b, "batch_latency_ms": lat} for b in (1, 8, 32, 128)],
            "by_length": [{"length": "5000 chars", "documents": 3, "mean_chars": 5012.0, "mentions_per_doc": 111.0,
                           "mentions_per_second": 222.0, "latency_ms": lat}],
            "single_doc_latencies_ms": [1.0, 2.0, 2.5, 3.0, 10.0]}


def _scale() -> dict:
    builds = [{"entities": n, "wall_s": n / 5000, "cpu_s": n / 5500, "peak_rss_mb": 50 + n / 1000,
               "sqlite_mb": n * 478 / 2**20, "bytes_per_entity": 478.0, "entities_per_s": 5000.0,
               "stats": {"priors": 3 * n}} for n in (10_000, 100_000)]
    return {"benchmark": "scale", "machine": MACHINE, "kb_build": builds,
            "text_encode": {"model": "sentence-transformers/all-MiniLM-L6-v2", "entities": 500, "mean_chars": 150.0,
                            "entities_per_s": 20.0, "entities_per_cpu_s": 25.0}}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    for name, obj in {"mel_dev": _mel(0.61), "mel_other": _mel(0.55), "latency": _latency(),
                      "scale": _scale()}.items():
        (folder / f"{name}.json").write_text(json.dumps(obj))
    (folder / "broken.json").write_text("{not json")
    return folder


def test_report_renders_tables_provenance_and_scale_note(results: Path, monkeypatch) -> None:
    monkeypatch.setenv("MMEL_BENCH_RESULTS", "")  # run.main sets it; restored after the test
    run.main(["--results", str(results), "report"])
    md = (results.parent / "RESULTS.md").read_text()
    # every result is listed with its revision and date; the broken file is skipped
    assert "`mel_dev.json` | mel | `abcdef1234`" in md and "`latency.json` | latency | `fedcba9876`" in md
    assert "2026-01-02 03:04:05" in md and "broken" not in md
    # the mel table has the full pipeline and the baseline for each result
    assert md.count("| full pipeline | 0.610 |") == 1 and md.count("| baseline: exact_name |") == 2
    # latency tables per batch size and per length
    assert "| 128 | 64 | 1280.0 |" in md and "| 5000 chars | 3 | 5012.0 | 111.0 |" in md
    # scale note: 6.8M / 100k = 68 times the largest build (20 s -> 0.4 h), said to be linear
    assert "linear extrapolation" in md and "0.4 h" in md
    assert f"{6.8e6 / 20 / 3600:.0f} h on this machine" in md
    for png in ("recall_at_k.png", "latency_distribution.png", "throughput_batch.png"):
        assert (results / png).stat().st_size > 1000
        assert f"](results/{png})" in md


def test_report_without_results_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    out = report.render(folder, with_plots=False)
    text = out.read_text()
    assert out == tmp_path / "RESULTS.md" and "No scale results yet" in text
    assert not list(folder.glob("*.png"))


def test_earlier_rows_keep_sizes_not_measured_now(tmp_path: Path) -> None:
    from benchmarks.common import earlier_rows

    old = tmp_path / "scale.json"
    old.write_text(json.dumps({"machine": MACHINE, "kb_build": [{"entities": 10_000}, {"entities": 1_000_000}]}))
    kept = earlier_rows(old, "kb_build", "entities", {10_000})
    assert kept == [{"entities": 1_000_000, "from_revision": MACHINE["git_revision"], "from_date": MACHINE["date"]}]
    assert earlier_rows(tmp_path / "missing.json", "kb_build", "entities", set()) == []


def _end_to_end() -> dict:
    run = {"wall_s": 10.0, "cpu_s": 12.0, "peak_rss_mb": 300.0, "load_average": [1.5, 1.0, 1.0]}
    piece = {**run, "start": 0, "entities": 2000, "encode_s": 8.0, "encode_cpu_s": 16.0}
    return {"entities": 2000, "total_wall_s": 90.0, "disk_mb": 30.0, "machine": {**MACHINE, "cpu_count": 2},
            "stages": {"kb_build": {**run, "sqlite_mb": 1.0},
                       "encode": {"pieces": [piece], "entities": 2000, "wall_s": 10.0, "cpu_s": 12.0, "encode_s": 8.0,
                                  "encode_cpu_s": 16.0, "peak_rss_mb": 900.0, "path": "ONNX Runtime int8",
                                  "entities_per_s": 250.0, "entities_per_cpu_s": 125.0},
                       "index": {**run, "kind": "flat", "index_build_s": 1.0, "context_distil_s": 20.0,
                                 "index_mb": 2.9, "bytes_per_entity": 1536.0, "context_encoder_mb": 22.5},
                       "link": {**run, "documents": 1000, "mentions_per_s": 1000.0, "hits_at_1": 0.99,
                                "recall_at_30": 1.0, "load_s": 2.0}}}


def _cpu_encode() -> dict:
    link = {"hits_at_1": 0.8993, "recall_at_30": 0.99, "micro_f1": 0.89}
    return {"benchmark": "cpu_encode", "machine": MACHINE, "command": "mmel kb index --quantize int8",
            "int8_prepare_seconds": 14.0, "load_average_before_index": [2.0], "load_average_after_index": [2.5],
            "int8": {"wall_s": 200.0, "cpu_s": 300.0, "peak_rss_mb": 1200.0, "entities": 18880, "encode_s": 160.0,
                     "index_kind": "hnsw", "index_build_s": 3.0, "entities_per_s": 118.0, "entities_per_cpu_s": 63.0},
            "cosine": {"mean": 0.99, "p01": 0.985, "min": 0.97}, "dev_mentions": {"mentions": 2561},
            "link_wikimel_dev": {"int8": link, "fp32": {**link, "hits_at_1": 0.9008}, "hits_at_1_change": -0.0015}}


def test_report_shows_measured_end_to_end_and_cpu_encode(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "scale.json").write_text(json.dumps({**_scale(), "end_to_end": _end_to_end()}))
    (folder / "cpu_encode.json").write_text(json.dumps(_cpu_encode()))
    md = report.render(folder, with_plots=False).read_text()
    note = md.split("## Scale note")[1].split("\n## ")[0]
    # the measured run comes first and says it is measured; the extrapolation is labelled as one
    assert note.index("Measured end to end at 2,000") < note.index("linear extrapolation")
    assert "**250.0 entities/s**" in note and "Hits@1 0.990" in note
    # full Wikipedia encoding is extrapolated from the measured int8 rate: 6.8M / 250 per s
    assert f"{6.8e6 / 250 / 3600:.0f} h on this machine" in note
    assert "no renderer" not in md and "int8 index **0.8993**" in md and "(change -0.15 points)" in md


def test_raw_text_section_shows_precision_only_where_the_gold_is_complete() -> None:
    from benchmarks.spotting import spotting_scores
    from kb.types import Document, Link, TextMention

    doc = Document(id="d", text="Ann Lee met Bo Kao.", mentions=(TextMention(0, 7, "Ann Lee"), TextMention(12, 18, "Bo Kao")))
    predicted = [Link(TextMention(0, 7, "Ann Lee"), "Q1", 0.9), Link(TextMention(8, 11, "met"), None, 0.1)]
    rest = {"seconds": {}, "spotter_share_of_link_time": 0.1, "probe": {"links": 0, "sentences": 20}}

    def row(complete):
        s = spotting_scores([doc], [["Q1", "Q2"]], [predicted], [["Q1", "Q2"]], complete)
        lines = report.section_raw_text({"raw": {"no_spans": {**s, **rest}}})
        return next(line for line in lines if line.startswith("| raw |"))

    assert "| 0.500 / 0.500 |" in row(True)        # precision 1/2, recall 1/2
    assert "≥ 0.500 / –" in row(False) and "0.500 / 0.500" not in row(False)
    old = {"found": 0.9, "found_exact": 0.5, "accuracy_on_found": 0.9, "given_span_accuracy_on_found": 0.9,
           "given_span_accuracy": 0.9, "predicted_per_1000_chars": 2.0, "gold_per_1000_chars": 1.0, **rest}
    assert "| raw | 0.900 | 0.500 | – | – |" in "\n".join(report.section_raw_text({"raw": {"no_spans": old}}))


def test_readme_table_is_refilled_from_the_mel_results(tmp_path):
    cal = {"count": 90, "ece": 0.03, "accuracy_at_0.9": 0.951, "share_at_0.9": 0.8,
           "bins": [{"bin": [0.9, 1.0], "count": 72, "confidence": 0.95, "accuracy": 0.951}]}
    r = {**_mel(0.912), "nil": {"gold": 0, "predicted": 5, "precision": 0.0, "recall": 0.0, "rate": 0.05},
         "calibration": cal}
    r["baselines"]["fuzzy_dense"] = {"hits_at_1": 0.864}
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results table: old -->\n| old |\n|---|\n| 1 |\n\nRevision `old`; keep (the\n"
                      "rest stays.\n", encoding="utf-8")
    report.fill_readme(readme, {"mel_wikimel_dev": r})
    text = readme.read_text(encoding="utf-8")
    assert "| WikiMEL dev (WikiMEL KB) | 91.2 | 90.0 | 70.0 | 5.0 % | 95.1 | 86.4 | 123 |" in text
    assert "| old |" not in text and "Revision `abcdef1234`" in text and text.endswith("rest stays.\n")
    assert text.startswith("# x\n\n<!-- results table")
    lines = report.reliability_tables({"mel_wikimel_dev": r})
    assert any("ECE 0.030" in l for l in lines) and "| 0.9–1.0 | 72 | 0.950 | 0.951 |" in lines


def test_cross_section_shows_the_seed_spread_when_several_seeds_were_trained() -> None:
    from benchmarks.cross import spread

    base = {"hits_at_1": 0.9, "recall_at_k": {"30": 0.9}, "micro_f1": 0.9}
    cell = {"hits_at_1": 0.938, "recall_at_k": {"30": 0.99}, "micro_f1": 0.93, "nil": {"rate": 0.01}}
    r = {"baselines": {"general dev": {"fuzzy_dense": base, "exact_name": base}}, "rows": {"both": {"general dev": cell}}}
    assert "Seed spread" not in "\n".join(report.section_cross({"cross": r}))
    hits = spread([0.938, 0.930, 0.934])
    assert hits["mean"] == pytest.approx(0.934) and hits["sd"] == pytest.approx(0.004) and spread([0.5])["sd"] == 0.0
    r["seeds"] = {"both": {"general dev": {"hits_at_1": hits, "nil_rate": spread([0.01, 0.02, 0.03])}}}
    text = "\n".join(report.section_cross({"cross": r}))
    assert "| both (3) | 0.934 ± 0.004 [0.930–0.938], 0.020 |" in text
