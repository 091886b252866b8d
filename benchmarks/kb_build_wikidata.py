"""Benchmark `mmel kb build --wikidata` on generated Wikidata JSON dumps, and check that memory stays flat.

For each size (lines of a dump written by `benchmarks/make_synthetic_wikidata.py` into the
git-ignored `benchmarks/work/`; a smaller one is a prefix of a larger one) it runs, as separate
processes sampled for peak RSS (whole process tree) and CPU time (`common.run_measured`):

- `parse`: `kb.wikidata.parse_wikidata` alone (read + decode on N workers, no database), on
  1 worker and on all cores,
- `build`: `mmel kb build --wikidata` on all cores (parse + SQLite KB with names and priors),
  with the size of the KB it writes.

Entities per core is entities per CPU-second of the process tree, which is robust to other load
on the machine; wall-clock entities/s is reported too. The full dump (~110M items) is projected
from the measured rates, and labelled as a projection. Results go to
`benchmarks/results/kb_build_wikidata.json` and a Markdown table to `kb_build_wikidata.md`.

    python benchmarks/run.py kb-build --wikidata           # 10k and 100k lines
    python benchmarks/run.py kb-build --wikidata --full    # 10k, 100k and 1M lines
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
from benchmarks.common import WORK, earlier_rows, machine, results_dir, run_measured  # noqa: E402

FULL_DUMP_ITEMS = 110_000_000
PARSE_ONLY = """
import json, resource, sys, time, collections
from kb.wikidata import parse_wikidata
t = time.perf_counter(); c = collections.Counter()
cpu = lambda who: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(who))
main0 = cpu(resource.RUSAGE_SELF)
for r in parse_wikidata(sys.argv[1], ("en",), workers=int(sys.argv[2]), progress=False):
    c.update(r.counts)
print(json.dumps({**c, "seconds": time.perf_counter() - t, "main_cpu_s": cpu(resource.RUSAGE_SELF) - main0,
                  "workers_cpu_s": cpu(resource.RUSAGE_CHILDREN)}))
"""


def ensure_dump(lines: int) -> Path:
    from benchmarks.make_synthetic_wikidata import write_wikidata_dump

    path = WORK / f"wikidata-{lines}.json"
    if not path.is_file():
        write_wikidata_dump(path, lines)
    return path


def bench_parse(path: Path, workers: int) -> dict:
    r = run_measured([sys.executable, "-c", PARSE_ONLY, str(path), str(workers)])
    stats = json.loads(r.pop("stdout"))
    row = {"tool": "parse", "workers": workers, **r, "lines": stats["lines"], "entities": stats["entities"],
           # the split of the parse: reading, cutting and dispatching blocks in the main process (after
           # imports), decoding in the worker processes (with 1 worker, all of it runs in the main one)
           "main_cpu_s": round(stats["main_cpu_s"], 2), "workers_cpu_s": round(stats["workers_cpu_s"], 2)}
    parse_cpu = stats["main_cpu_s"] + stats["workers_cpu_s"]
    row["entities_per_parse_cpu_s"] = round(stats["entities"] / parse_cpu) if parse_cpu else None
    if workers > 1 and stats["workers_cpu_s"]:
        row["entities_per_worker_cpu_s"] = round(stats["entities"] / stats["workers_cpu_s"])
    return row


def bench_build(path: Path, workers: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix="mmel-bench-wd-"))
    try:
        env = {**os.environ, "MMEL_HOME": str(home)}
        r = run_measured([sys.executable, "-m", "cli", "kb", "build", "--wikidata", str(path), "--kb", "bench",
                          "--workers", str(workers), "--no-progress"], env)
        stats = json.loads(r.pop("stdout"))
        kb_bytes = sum(f.stat().st_size for f in (home / "kbs" / "bench").iterdir() if f.is_file())
        return {"tool": "build", "workers": workers, **r, "lines": stats["wikidata"]["lines"],
                "entities": stats["entities"], "mentions": stats["mentions"], "priors": stats["priors"],
                "kb_mb": round(kb_bytes / 2**20, 1), "kb_bytes_per_entity": round(kb_bytes / stats["entities"], 1)}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def with_rates(row: dict, path: Path) -> dict:
    size = path.stat().st_size
    row["dump_mb"] = round(size / 2**20, 1)
    row["bytes_per_line"] = round(size / row["lines"])
    row["entities_per_s"] = round(row["entities"] / row["wall_s"])
    row["entities_per_cpu_s"] = round(row["entities"] / row["cpu_s"]) if row["cpu_s"] else None
    row["mb_per_cpu_s"] = round(size / 2**20 / row["cpu_s"], 1) if row["cpu_s"] else None
    return row


def projection(runs: list[dict], cores: int) -> dict:
    """The full dump's time from the largest measured size: a projection, not a measurement."""
    largest = max(r["lines"] for r in runs)
    out = {"items": FULL_DUMP_ITEMS, "from_lines": largest, "label": "projection: the measured rates times "
           f"{FULL_DUMP_ITEMS:,} items, assuming the generated items' size and linear scaling"}
    for r in runs:
        if r["lines"] == largest and r["workers"] == cores and r["entities_per_cpu_s"]:
            out[f"{r['tool']}_cpu_hours"] = round(FULL_DUMP_ITEMS / r["entities_per_cpu_s"] / 3600, 1)
            out[f"{r['tool']}_wall_hours_on_{cores}_cores"] = round(FULL_DUMP_ITEMS / r["entities_per_s"] / 3600, 1)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k and 100k lines (the default sizes otherwise: 10k, 100k, 1M)")
    ap.add_argument("--sizes", default=None, help="comma-separated dump sizes in lines, e.g. 10000,100000")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args(argv)
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    w = args.workers
    report = {"benchmark": "kb_build_wikidata", "machine": machine(), "runs": [], "notes": [
        "dumps generated by benchmarks/make_synthetic_wikidata.py (seed 0); one worker per core; "
        "entities/CPU-s: per CPU-second of the whole process tree (Python start and imports included); "
        "entities/parse-CPU-s: per CPU-second of the parse alone (main process after imports + workers); "
        f"1-minute load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"]}
    for lines in sizes:
        path = ensure_dump(lines)
        for row in (bench_parse(path, 1), bench_parse(path, w), bench_build(path, w)):
            row = with_rates(row, path)
            report["runs"].append(row)
            print(json.dumps(row), flush=True)
    report["projection_full_dump"] = projection(report["runs"], w)
    out = results_dir()
    # a run of fewer sizes keeps the other sizes of an earlier run (marked with their revision)
    report["runs"] += earlier_rows(out / "kb_build_wikidata.json", "runs", "lines", set(sizes))
    out.mkdir(parents=True, exist_ok=True)
    (out / "kb_build_wikidata.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "kb_build_wikidata.md").write_text(markdown(report))
    print(json.dumps(report["projection_full_dump"], indent=2))


def markdown(report: dict) -> str:
    lines = [
        "| lines | tool | workers | dump MB | bytes/line | entities | wall s | CPU s | entities/s | entities/CPU-s | "
        "parse CPU s: main / workers | entities/parse-CPU-s | peak RSS MB | KB MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(report["runs"], key=lambda r: (r["lines"], r["tool"] != "parse", r["workers"])):
        earlier = f" (rev {r['from_revision'][:8]})" if r.get("from_revision") else ""
        split = f"{r['main_cpu_s']} / {r['workers_cpu_s']}" if "main_cpu_s" in r else ""
        lines.append(
            f"| {r['lines']:,}{earlier} | {r['tool']} | {r['workers']} | {r['dump_mb']} | {r['bytes_per_line']} | "
            f"{r['entities']:,} | {r['wall_s']} | {r['cpu_s']} | {r['entities_per_s']:,} | {r['entities_per_cpu_s']:,} | "
            f"{split} | {format(r['entities_per_parse_cpu_s'], ',') if r.get('entities_per_parse_cpu_s') else ''} | {r['peak_rss_mb']} | {r.get('kb_mb', '')} |"
        )
    p = report["projection_full_dump"]
    lines += ["", f"Projection for the full dump ({p['items']:,} items, from {p['from_lines']:,} lines; "
              f"{p['label']}): " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in p.items()
                                          if k.endswith(("hours", "cores"))),
              "", f"git {report['machine']['git_revision'][:10]}, {report['machine']['cpu_count']} CPUs, "
              f"{report['machine']['platform']}", *report["notes"], ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
