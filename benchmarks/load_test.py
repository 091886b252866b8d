"""Load test of the HTTP server: latency percentiles, throughput and errors under concurrency.

Starts the server on loopback (uvicorn in a subprocess, a free port), waits for ``/health``,
then for each scenario sends `--requests` POST /link requests from `--concurrency` concurrent
clients (httpx, asyncio) after a short warm-up, and records status codes, latency p50/p95/p99
and requests/s. Scenarios: ``given`` (documents with their mention spans), ``detect`` (mentions
detected by the server), ``html`` (given spans, ``?html=true``).

The server runs either a KB from the data home (``--home/--kb/--model``, via ``mmel serve``) or,
by default, a stand-in built in a temporary folder: the WikiMEL KB (18,880 entities) with the
hashing text encoder and an untrained reranker — the same pipeline work minus the MiniLM
encoder. Documents come from WikiMEL dev (2,160, cycled). Results go to
`benchmarks/results/load_test.json` and `.md`.

    python benchmarks/load_test.py
    python benchmarks/load_test.py --home ~/.local/share/mmel --kb wikimel --scenarios given
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, ROOT, disjoint_spans, machine, results_dir  # noqa: E402
from kb.home import DEFAULT_KB, kb_dir, kb_path  # noqa: E402

SCENARIOS = ("given", "detect", "html")
FALLBACK_ENTITIES = [
    {"qid": "Q76", "name": "Barack Obama", "description": "44th president of the United States"},
    {"qid": "Q6279", "name": "Joe Biden", "description": "46th president of the United States"},
    {"qid": "Q90", "name": "Paris", "description": "capital of France"},
    {"qid": "Q64", "name": "Berlin", "description": "capital of Germany"},
]
FALLBACK_DOCS = [
    {"id": "1", "text": "Barack Obama met Joe Biden in Paris.", "mentions": [{"start": 0, "end": 12}, {"start": 17, "end": 26}]},
    {"id": "2", "text": "Biden flew to Berlin.", "mentions": [{"start": 0, "end": 5}, {"start": 14, "end": 20}]},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_standin(home: Path, entities: Path | None) -> None:
    """The default KB of the data home `home` with a flat hashing text index."""
    from indexer.bootstrap import ensure_kb
    from indexer.text import HashingTextEncoder

    if entities is None:
        entities = home / "entities.jsonl"
        entities.write_text("".join(json.dumps(e) + "\n" for e in FALLBACK_ENTITIES), encoding="utf-8")
    ensure_kb(home, DEFAULT_KB, entities, lambda: HashingTextEncoder(64), kind="flat")


def serve_standin(home: Path, port: int, threads: int) -> None:
    """Server process for the stand-in KB (hashing encoder, untrained reranker)."""
    from indexer.dense import load_text_index
    from indexer.text import HashingTextEncoder
    from kb.store import KnowledgeBase
    from linker.features import FEATURES
    from linker.pipeline import Linker
    from linker.reranker import Reranker, RerankerConfig
    from linker.fronts.server import serve

    kb = KnowledgeBase(kb_path(home))
    reranker = Reranker(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=FEATURES)).eval()
    linker = Linker(kb, load_text_index(kb, kb_dir(home)), HashingTextEncoder(64), reranker)
    serve(linker, host="127.0.0.1", port=port, threads=threads or None)


def start_server(args, port: int, tmp: Path) -> subprocess.Popen:
    log = open(tmp / "server.log", "w")
    if args.home:
        cmd = [sys.executable, "-m", "cli", "serve", "--home", str(args.home), "--kb", args.kb, "--port", str(port),
               "--threads", str(args.threads)]
        if args.model:
            cmd += ["--model", str(args.model)]
    else:
        entities = args.entities if args.entities and args.entities.is_file() else None
        build_standin(tmp, entities)
        cmd = [sys.executable, __file__, "--serve-standin", str(tmp), "--port", str(port),
               "--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + args.startup_timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{(tmp / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"server did not answer /health within {args.startup_timeout} s")


def load_docs(path: Path | None) -> list[dict]:
    if path is None or not path.is_file():
        return FALLBACK_DOCS
    docs = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            docs.append({"id": obj["id"], "text": obj["text"], "mentions": disjoint_spans(obj.get("mentions", []))})
    return docs


async def run_scenario(port: int, docs: list[dict], scenario: str, n: int, concurrency: int, warmup: int) -> dict:
    url = f"http://127.0.0.1:{port}/link" + ("?html=true" if scenario == "html" else "")
    bodies = [
        json.dumps({"id": d["id"], "text": d["text"]} if scenario == "detect" else d).encode()
        for d in docs
    ]
    statuses: Counter = Counter()
    errors: list[str] = []
    latencies: list[float] = []
    queue: asyncio.Queue = asyncio.Queue()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        for i in range(warmup):
            await client.post(url, content=bodies[i % len(bodies)], headers={"content-type": "application/json"})
        for i in range(n):
            queue.put_nowait(bodies[i % len(bodies)])

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                t = time.perf_counter()
                try:
                    r = await client.post(url, content=body, headers={"content-type": "application/json"})
                    statuses[r.status_code] += 1
                    if r.status_code != 200:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    statuses["exception"] += 1
                    errors.append(repr(exc)[:200])
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "scenario": scenario,
        "requests": n,
        "concurrency": concurrency,
        "errors": n - statuses.get(200, 0),
        "statuses": {str(k): v for k, v in statuses.items()},
        "error_examples": errors[:5],
        "wall_seconds": round(wall, 3),
        "requests_per_second": round(n / wall, 1),
        "latency_ms": {
            "p50": round(float(np.percentile(ms, 50)), 2),
            "p95": round(float(np.percentile(ms, 95)), 2),
            "p99": round(float(np.percentile(ms, 99)), 2),
            "mean": round(float(ms.mean()), 2),
            "max": round(float(ms.max()), 2),
        },
    }


def load_1m(info: dict) -> float:
    """1-minute load average at the start (older results stored it under another key)."""
    if "load_average_1m_at_start" in info:
        return info["load_average_1m_at_start"]
    return round(info.get("load_average_at_start", [float("nan")])[0], 2)


def markdown(result: dict) -> str:
    lines = [
        f"# Load test ({result['server']['kind']}, {result['server']['entities']} entities)",
        "",
        *([result["server"]["note"], ""] if result["server"].get("note") else []),
        f"git {result['machine']['git_revision'][:10]}, {result['machine']['cpu_count']} CPUs, "
        f"{result['machine']['platform']}, load average at start {load_1m(result['machine'])}, "
        f"server RSS {result['server']['rss_mb']} MB, "
        f"threads per request: {result['server']['threads_per_request']}",
        "",
        "| scenario | requests | concurrency | errors | req/s | p50 ms | p95 ms | p99 ms | max ms | server CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["scenarios"]:
        lat = s["latency_ms"]
        lines.append(
            f"| {s['scenario']} | {s['requests']} | {s['concurrency']} | {s['errors']} | {s['requests_per_second']} "
            f"| {lat['p50']} | {lat['p95']} | {lat['p99']} | {lat['max']} | {s['server_cpu_ms_per_request']} |"
        )
    return "\n".join(lines) + "\n"


def measure(args, proc: subprocess.Popen, port: int, docs: list[dict], scenarios: list[str]):
    """Run the scenarios against the started server: its /health, one result per scenario, whether
    it is still alive after them and its RSS (with children)."""
    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()
    results = []
    server = psutil.Process(proc.pid)
    for s in scenarios:
        cpu0 = sum(server.cpu_times()[:2])
        res = asyncio.run(run_scenario(port, docs, s, args.requests, args.concurrency, args.warmup))
        # server CPU per request: robust to other load on the machine (includes warm-up)
        res["server_cpu_ms_per_request"] = round(
            1000 * (sum(server.cpu_times()[:2]) - cpu0) / (args.requests + args.warmup), 2)
        print(json.dumps(res), flush=True)
        results.append(res)
    alive = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    rss = server.memory_info().rss + sum(c.memory_info().rss for c in server.children(recursive=True))
    return health, results, alive, rss


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, help="Data home with a built KB (served with `mmel serve`).")
    ap.add_argument("--kb", default=DEFAULT_KB, help="KB name under --home.")
    ap.add_argument("--model", type=Path, help="Reranker path for `mmel serve --model`.")
    ap.add_argument("--entities", type=Path, default=DATA / "wikimel" / "kb.jsonl",
                    help="Entity JSONL for the stand-in KB (without --home).")
    ap.add_argument("--docs", type=Path, default=DATA / "wikimel" / "dev.jsonl", help="Documents to send (JSONL).")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="Server torch/FAISS threads per request (0: library default).")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"Comma-separated: {', '.join(SCENARIOS)}.")
    ap.add_argument("--startup-timeout", type=float, default=300)
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON file to write (default: load_test.json in the results folder).")
    ap.add_argument("--note", default="", help="Free text stored with the results (e.g. what the model is).")
    ap.add_argument("--serve-standin", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_standin:
        serve_standin(args.serve_standin, args.port, args.threads)
        return
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad:
        raise SystemExit(f"unknown scenario(s) {bad}: choose from {', '.join(SCENARIOS)}")
    docs = load_docs(args.docs)
    info = machine("fastapi", "uvicorn", "httpx")
    with tempfile.TemporaryDirectory(prefix="mmel-load-") as tmp:
        port = free_port()
        proc = start_server(args, port, Path(tmp))
        try:
            health, results, alive, rss = measure(args, proc, port, docs, scenarios)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    result = {
        "benchmark": "load_test",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info,
        "server": {
            "kind": f"mmel serve --kb {args.kb}" if args.home else "stand-in (hashing encoder, untrained reranker)",
            "model": str(args.model) if args.model else None,
            "note": args.note,
            "entities": health["kb"]["entities"],
            "models": health["models"],
            "rss_mb": round(rss / 2**20, 1),
            "threads_per_request": args.threads or "default",
            "alive_after": alive,
        },
        "documents": {"source": str(args.docs) if args.docs and args.docs.is_file() else "built-in", "count": len(docs)},
        "scenarios": results,
    }
    args.out = args.out or results_dir() / "load_test.json"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
