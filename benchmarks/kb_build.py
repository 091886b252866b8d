"""Benchmark the dump reader against wikiextractor, and check that memory stays flat.

For each input it runs, as separate processes sampled for peak RSS (whole process tree,
psutil, every 50 ms) and CPU time (getrusage of reaped children):

- `ours-parse`: `kb.dump.parse_dump` alone (scan + parse on N workers, no database),
- `ours-build`: `mmel kb build --dump` (parse + SQLite KB with priors), on the smaller inputs,
- `wikiextractor`: `python -m wikiextractor.WikiExtractor <dump> -o <tmp> --processes N -q`.

Throughput per core is MB per CPU-second of the process tree, which is robust to other load
on the machine; wall-clock MB/s and pages/s are reported too. Results go to
`benchmarks/results/kb_build.json` and a Markdown table to `benchmarks/results/kb_build.md`.

    python benchmarks/kb_build.py                # sample + 110 MB + 1100 MB synthetic
    python benchmarks/kb_build.py --quick        # sample + 110 MB only
    python benchmarks/kb_build.py --wikidata [--quick]   # Wikidata JSON dumps: benchmarks/kb_build_wikidata.py
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, WORK, earlier_rows, machine, results_dir, run_measured  # noqa: E402

SAMPLE = DATA / "wiki" / "enwiki-sample.xml.bz2"

PARSE_ONLY = """
import json, sys, time, collections
from kb.dump import parse_dump
t = time.perf_counter(); c = collections.Counter()
for r in parse_dump(sys.argv[1], workers=int(sys.argv[2]), progress=False):
    c.update(r.counts)
print(json.dumps({**c, "seconds": time.perf_counter() - t}))
"""


def xml_mb(path: Path) -> float:
    """Uncompressed size in MiB."""
    if path.suffix == ".bz2":
        import bz2

        with bz2.open(path) as fh:
            return sum(len(b) for b in iter(lambda: fh.read(1 << 24), b"")) / 2**20
    return path.stat().st_size / 2**20


def bench_ours_parse(path: Path, workers: int) -> dict:
    r = run_measured([sys.executable, "-c", PARSE_ONLY, str(path), str(workers)])
    stats = json.loads(r.pop("stdout"))
    return {"tool": "ours-parse", "workers": workers, **r, "pages": stats["pages"], "links": stats.get("links", 0)}


def bench_ours_build(path: Path, workers: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix="mmel-bench-"))
    try:
        env = {**os.environ, "MMEL_HOME": str(home)}
        r = run_measured(
            [sys.executable, "-m", "cli", "kb", "build", "--dump", str(path), "--kb", "bench",
             "--workers", str(workers), "--no-progress"], env,
        )
        stats = json.loads(r.pop("stdout"))
        return {"tool": "ours-build", "workers": workers, **r, "pages": stats["dump"]["pages"],
                "entities": stats["entities"], "mentions": stats["mentions"], "priors": stats["priors"]}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench_wikiextractor(path: Path, processes: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="wikiextractor-"))
    try:
        r = run_measured([sys.executable, "-m", "wikiextractor.WikiExtractor", str(path), "-o", str(out),
                          "--processes", str(processes), "-q"])
        r.pop("stdout")
        docs = sum(f.read_text(errors="replace").count("<doc ") for f in out.rglob("wiki_*"))
        return {"tool": "wikiextractor", "workers": processes, **r, "docs_written": docs}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def with_rates(row: dict, mb: float, pages: int | None) -> dict:
    row["mb"] = round(mb, 1)
    row["mb_per_s"] = round(mb / row["wall_s"], 2)
    row["mb_per_cpu_s"] = round(mb / row["cpu_s"], 2) if row["cpu_s"] else None
    if pages:
        row.setdefault("pages", pages)
        row["pages_per_s"] = round(pages / row["wall_s"], 1)
        row["pages_per_cpu_s"] = round(pages / row["cpu_s"], 1) if row["cpu_s"] else None
    return row


def ensure_synthetic(mb: int) -> Path:
    from benchmarks.make_synthetic_dump import write_dump

    path = WORK / f"synthetic-{mb}.xml"
    if not path.is_file() or path.stat().st_size < mb * 2**20:
        write_dump(path, mb)  # same seed: the smaller dumps are prefixes of the larger ones
    return path


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--wikidata" in argv:
        from benchmarks.kb_build_wikidata import main as wikidata_main

        return wikidata_main([a for a in argv if a != "--wikidata"])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip the 1100 MB dump")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--large-mb", type=int, default=1100)
    ap.add_argument("--mid-mb", type=int, default=110)
    args = ap.parse_args(argv)
    w = args.workers
    inputs = [("enwiki-sample.xml.bz2 (real)", SAMPLE), (f"synthetic {args.mid_mb} MB", ensure_synthetic(args.mid_mb))]
    if not args.quick:
        inputs.append((f"synthetic {args.large_mb} MB", ensure_synthetic(args.large_mb)))
    report = {"machine": machine(), "runs": [], "notes": []}
    for label, path in inputs:
        mb = xml_mb(path)
        large = mb > 500
        rows = [bench_ours_parse(path, 1), bench_ours_parse(path, w)]
        if not large:
            rows.append(bench_ours_build(path, w))
            rows += [bench_wikiextractor(path, 1), bench_wikiextractor(path, w)]
        else:
            report["notes"].append(
                f"wikiextractor and the full SQLite build were run on the {args.mid_mb} MB synthetic dump, "
                f"which is the first {args.mid_mb} MB (same pages) of the {args.large_mb} MB one, not on the "
                f"{args.large_mb} MB dump itself (time budget)."
            )
        pages = rows[0]["pages"]
        for row in rows:
            row = with_rates(row, mb, pages)
            row["input"] = label
            report["runs"].append(row)
            print(json.dumps(row), flush=True)
    report["summary"] = summarise(report["runs"])
    out = results_dir()
    # a --quick run keeps the large-dump rows of an earlier full run (marked with their revision)
    report["runs"] += earlier_rows(out / "kb_build.json", "runs", "input", {label for label, _ in inputs})
    out.mkdir(parents=True, exist_ok=True)
    (out / "kb_build.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "kb_build.md").write_text(markdown(report))
    print(json.dumps(report["summary"], indent=2))


def summarise(runs: list[dict]) -> dict:
    out: dict = {"throughput_ratio_per_cpu_s": {}, "peak_rss_mb_ours_parse": {}}
    by = {(r["input"], r["tool"], r["workers"]): r for r in runs}
    for (label, tool, workers), r in by.items():
        if tool == "ours-parse":
            out["peak_rss_mb_ours_parse"][f"{label}, {workers} worker(s)"] = r["peak_rss_mb"]
        if tool == "wikiextractor" and (label, "ours-parse", workers) in by:
            ours = by[(label, "ours-parse", workers)]
            out["throughput_ratio_per_cpu_s"][f"{label}, {workers} worker(s)"] = round(
                ours["mb_per_cpu_s"] / r["mb_per_cpu_s"], 2
            )
    return out


def markdown(report: dict) -> str:
    lines = [
        "| input | tool | workers | MB | wall s | CPU s | MB/s | MB/CPU-s | pages/s | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        earlier = f" (rev {r['from_revision'][:8]})" if r.get("from_revision") else ""
        lines.append(
            f"| {r['input']}{earlier} | {r['tool']} | {r['workers']} | {r['mb']} | {r['wall_s']} | {r['cpu_s']} | "
            f"{r['mb_per_s']} | {r['mb_per_cpu_s']} | {r.get('pages_per_s', '')} | {r['peak_rss_mb']} |"
        )
    lines += ["", f"git {report['machine']['git_revision'][:10]}, {report['machine']['cpu_count']} CPUs, "
              f"{report['machine']['platform']}", *report["notes"], ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
