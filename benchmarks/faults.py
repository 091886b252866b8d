"""Fault suite: killed and concurrent writers, hostile documents, large images. Not a test: it
measures and reports; `tests/test_faults.py` runs small versions of the same scenarios and asserts.

- **kills**: random SIGKILLs of `mmel kb build --entities`, `kb build --dump` and `kb index
  --text-model hashing`, each after the writer is seen holding the KB's write lock (its pid in
  the lock file), at a uniform random moment within the first 60 % of the time an uninterrupted
  run held it; `killed_mid_run` counts the kills that found it still running. After every kill: is the KB (or index) the one before, and is the KB's write
  lock free at once? After all kills, one rerun: does it succeed and leave no temporary files?
- **builders**: 2-4 `kb build`s (different inputs) into one KB, started 0-0.3 s apart, and a
  `kb index` racing a `kb build`: every writer either completes or fails at once with the
  one-line "is being built by process N"; the KB left behind is complete and is the input of a
  writer that completed. `races_overlapped` counts the races in which two writers provably ran
  at once (a writer refused with another racer's pid as the lock holder, or a writer seen holding
  the lock while a later one started); a race without it proves nothing.
- **fuzz**: hypothesis documents (JSON-shaped, arbitrary JSON, raw bytes incl. invalid UTF-8)
  through the CLI reader (`read_documents`), some through `mmel link` in-process, and all as
  request bodies to the server app (FastAPI TestClient, server exceptions re-raised): counted
  tracebacks and 5xx.
- **images**: the server in a subprocess with a face index; concurrent POST /link requests,
  each a ~49-megapixel PNG; peak and after-load RSS of the server process (`--code DIR` runs
  the server from another checkout, e.g. the code before this suite, for comparison).
- **load**: `benchmarks/load_test.py` (1,000 `given` requests at concurrency 8) → errors.

    python benchmarks/faults.py                       # a few minutes on 2 cores
    python benchmarks/faults.py --kills 20 --docs 10000
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, ROOT, machine, results_dir, write_json  # noqa: E402

GALLERY = DATA / "faces" / "gallery"
FACE_PEOPLE = {"obama": ("Q76", "Barack Obama"), "biden": ("Q6279", "Joe Biden"),
               "kit_harington": ("Q3772", "Kit Harington"), "rose_leslie": ("Q461132", "Rose Leslie"),
               "alex_lacamoire": ("Q4717212", "Alex Lacamoire")}
BUSY = "is being"


# -- running the CLI -----------------------------------------------------------------------------


def _env(code: Path = ROOT) -> dict:
    return {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start(args: list[str], home: Path) -> subprocess.Popen:
    """`mmel ARGS --home HOME` in a subprocess (stdout/stderr captured)."""
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *args, "--home", str(home)], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(args: list[str], home: Path) -> tuple[int, str]:
    """Run `mmel ARGS` to the end; `(exit status, stderr)`."""
    proc = start(args, home)
    _, err = proc.communicate()
    return proc.returncode, err


def _first_error(err: str) -> str:
    lines = [l for l in err.splitlines() if l.startswith("error:") or "Traceback" in l]
    return (lines or err.strip().splitlines()[-1:] or [""])[0][:200]


# -- kills ---------------------------------------------------------------------------------------


def _kb_state(home: Path, kb: str) -> str:
    """The KB's checksum and entity count, or what is wrong with it."""
    from kb.errors import LinkerError
    from kb.home import kb_path
    from kb.store import KnowledgeBase

    try:
        store = KnowledgeBase(kb_path(home, kb))
        return f"{store.checksum}/{len(store)}"
    except LinkerError as exc:
        return f"broken: {exc}"


def _index_state(home: Path, kb: str) -> str:
    """The text index's KB checksum, count and kind (after a test search), or what is wrong."""
    import numpy as np

    from indexer.dense import load_text_index
    from kb.errors import LinkerError
    from kb.home import kb_dir, kb_path
    from kb.store import KnowledgeBase

    try:
        store = KnowledgeBase(kb_path(home, kb))
        index = load_text_index(store, kb_dir(home, kb))
        index.search(np.ones((1, index.dim), np.float32), 3)
        return f"{index.manifest['kb_checksum']}/{index.manifest['count']}/{index.kind}"
    except LinkerError as exc:
        return f"broken: {exc}"


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp*")) if folder.is_dir() else []


def _lock_free(folder: Path) -> bool:
    from kb.errors import KBBusyError
    from kb.lock import WriteLock

    try:
        WriteLock(folder, "checked").acquire().release()
        return True
    except KBBusyError:
        return False


def holder_pid(folder: Path) -> int | None:
    """The pid the KB's lock file names (the writer that took the lock last), else None."""
    from kb.lock import LOCK_FILE

    try:
        return int(json.loads((folder / LOCK_FILE).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def wait_for_lock(proc: subprocess.Popen, folder: Path, timeout: float = 120.0) -> bool:
    """Wait until `proc` holds the KB's write lock (the lock file names its pid: it is writing)
    or exits; True when it was seen holding the lock while running."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if proc.poll() is not None:
            return False
        if holder_pid(folder) == proc.pid:
            return True
        time.sleep(0.005)
    return False


def kill_runs(name: str, args: list[str], home: Path, kb: str, kills: int, rng: random.Random) -> dict:
    """SIGKILL `mmel ARGS` `kills` times mid-write; see the module docstring.

    Each kill comes after the progress marker "the process holds the KB's write lock" (its pid
    in the lock file), at a random moment within the first 60 % of the time the uninterrupted
    run held it; `killed_mid_run` counts the kills that found the process running after the
    marker (the others are not faults and say so)."""
    state = _index_state if name == "index" else _kb_state
    folder = home / "kbs" / kb
    proc = start(args, home)
    started = time.perf_counter()
    wait_for_lock(proc, folder)
    locked_at = time.perf_counter()
    _, err = proc.communicate()
    full_s, write_s = time.perf_counter() - started, time.perf_counter() - locked_at
    if proc.returncode:
        raise RuntimeError(f"{name}: the uninterrupted run failed: {err[-500:]}")
    reference = state(home, kb)
    intact = lock_free = killed = left_temporaries = 0
    problems: list[str] = []
    for _ in range(kills):
        proc = start(args, home)
        if wait_for_lock(proc, folder):
            time.sleep(rng.uniform(0.0, 0.6) * write_s)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
        proc.communicate()
        left_temporaries += bool(_temporaries(folder))
        lock_free += _lock_free(folder)  # (also clears the temporaries, as the next writer would)
        now = state(home, kb)
        intact += now == reference
        if now != reference:
            problems.append(now[:200])
    code, err = run(args, home)
    return {"scenario": f"SIGKILL during {name}", "runs": kills, "killed_mid_run": killed,
            "uninterrupted_s": round(full_s, 2), "uninterrupted_lock_held_s": round(write_s, 2),
            "intact_after_kill": intact, "lock_free_after_kill": lock_free,
            "kills_leaving_temporaries": left_temporaries, "rerun_ok": code == 0 and state(home, kb) == reference,
            "temporaries_after_rerun": len(_temporaries(folder)), "problems": problems[:5],
            "rerun_error": _first_error(err) if code else ""}


# -- concurrent writers --------------------------------------------------------------------------


_HOLDER = re.compile(r"by process (\d+)")


def race(writers: list[list[str]], home: Path, kb: str, rng: random.Random) -> dict:
    """Start `writers` (mmel argument lists) 0-0.3 s apart; their outcomes and the KB after.

    `overlapped`: proof that two writers ran at once, from the lock's holder: a writer was
    refused because another writer of this race held the lock (its busy message names that
    pid), or a writer was seen holding the lock while a later one had already started."""
    folder = home / "kbs" / kb
    procs = []
    seen_holding_with_rival = False
    for args in writers:
        if procs:
            held = holder_pid(folder)
            seen_holding_with_rival |= any(p.pid == held and p.poll() is None for _, p in procs)
        procs.append((args, start(args, home)))
        time.sleep(rng.uniform(0, 0.3))
    pids = {p.pid for _, p in procs}
    outcomes, refused_by_rival = [], False
    for args, proc in procs:
        _, err = proc.communicate()
        kind = "ok" if proc.returncode == 0 else "busy" if BUSY in err and "Traceback" not in err else "failed"
        if kind == "busy":
            refused_by_rival |= any(int(pid) in pids - {proc.pid} for pid in _HOLDER.findall(err))
        outcomes.append({"command": " ".join(args[:2]), "outcome": kind, "error": _first_error(err) if kind != "ok" else ""})
    return {"outcomes": outcomes, "kb": _kb_state(home, kb), "overlapped": refused_by_rival or seen_holding_with_rival}


def builders(n: int, files: list[Path], home: Path, rounds: int, rng: random.Random) -> dict:
    """`rounds` races of `n` builders of KB `race<n>`, each from its own entity file; the KB is
    lost if it is broken or is not the input of a builder that completed."""
    kb = f"race{n}"
    counts: Counter = Counter()
    lost = 0
    examples: list[str] = []
    for _ in range(rounds):
        result = race([["kb", "build", "--entities", str(f), "--kb", kb, "--no-progress"] for f in files[:n]],
                      home, kb, rng)
        counts.update(o["outcome"] for o in result["outcomes"])
        counts["overlapped"] += result["overlapped"]
        sizes = {_lines(f) for f, o in zip(files, result["outcomes"]) if o["outcome"] == "ok"}
        if result["kb"].startswith("broken") or int(result["kb"].split("/")[1]) not in sizes:
            lost += 1
            examples.append(result["kb"][:200])
        examples += [o["error"] for o in result["outcomes"] if o["outcome"] == "failed"]
    return {"scenario": f"{n} concurrent kb build", "runs": rounds, "writers": n * rounds, "completed": counts["ok"],
            "refused_busy": counts["busy"], "failed_otherwise": counts["failed"], "kb_lost": lost,
            "races_overlapped": counts["overlapped"], "problems": examples[:5]}


def build_and_index(file: Path, home: Path, rounds: int, rng: random.Random) -> dict:
    """`kb build` racing `kb index` on one KB: each completes or is refused; the KB stays whole
    and the index is either valid for it or refuses to load (never a broken file)."""
    kb = "race-index"
    run(["kb", "build", "--entities", str(file), "--kb", kb, "--no-progress"], home)
    counts: Counter = Counter()
    lost = 0
    problems: list[str] = []
    for _ in range(rounds):
        writers = [["kb", "build", "--entities", str(file), "--kb", kb, "--no-progress"],
                   ["kb", "index", "--text-model", "hashing", "--kb", kb, "--no-progress"]]
        rng.shuffle(writers)
        result = race(writers, home, kb, rng)
        counts.update(o["outcome"] for o in result["outcomes"])
        counts["overlapped"] += result["overlapped"]
        index = _index_state(home, kb)
        if result["kb"].startswith("broken") or (index.startswith("broken") and "built for another KB" not in index
                                                  and "no text index" not in index):
            lost += 1
            problems.append(f"{result['kb'][:100]} | {index[:100]}")
    return {"scenario": "kb build racing kb index", "runs": rounds, "writers": 2 * rounds, "completed": counts["ok"],
            "refused_busy": counts["busy"], "failed_otherwise": counts["failed"], "kb_lost": lost,
            "races_overlapped": counts["overlapped"], "problems": problems[:5]}


def _lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


# -- hostile documents ---------------------------------------------------------------------------


def payloads(n: int, seed: int) -> list[bytes]:
    """`n` hypothesis-generated request bodies / file contents: document-shaped JSON with bad
    fields, arbitrary JSON, and raw bytes."""
    from hypothesis import HealthCheck, Phase, given, seed as hyp_seed, settings
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                        st.text(max_size=30))
    junk = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                        max_leaves=12)
    span = st.fixed_dictionaries({"start": st.integers(-5, 80) | junk, "end": st.integers(-5, 80) | junk})
    image = st.fixed_dictionaries({"id": junk, "data": st.one_of(st.text(max_size=40), st.binary(max_size=60).map(
        lambda b: base64.b64encode(b).decode()), junk)}) | st.fixed_dictionaries({"path": st.text(max_size=20)})
    document = st.fixed_dictionaries(
        {"text": st.text(max_size=80) | junk},
        optional={"id": junk, "mentions": st.lists(span | junk, max_size=5) | junk,
                  "images": st.lists(image | junk, max_size=2) | junk})
    as_json = st.one_of(document, junk).map(lambda o: json.dumps(o, ensure_ascii=bool(len(str(o)) % 2)).encode())
    body = st.one_of(as_json, as_json.map(lambda b: b + b"\n" + b), st.binary(max_size=120))
    out: list[bytes] = []

    @hyp_seed(seed)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(body)
    def collect(b: bytes) -> None:
        out.append(b)

    collect()
    return out[:n]


def fuzz_reader(bodies: list[bytes], folder: Path) -> dict:
    """Each body as a `.json` or `.jsonl` file through `read_documents`: documents or `InputError`."""
    from kb.errors import InputError
    from linker.document import read_documents

    counts: Counter = Counter()
    tracebacks: list[str] = []
    for i, body in enumerate(bodies):
        path = folder / f"doc{i % 2}.{'jsonl' if i % 2 else 'json'}"
        path.write_bytes(body)
        try:
            list(read_documents(path))
            counts["read"] += 1
        except InputError:
            counts["rejected"] += 1
        except Exception as exc:  # noqa: BLE001 - what we count
            tracebacks.append(f"{type(exc).__name__}: {str(exc)[:100]}")
    return {"scenario": "hypothesis documents → CLI reader", "runs": len(bodies), "read": counts["read"],
            "rejected_one_line": counts["rejected"], "tracebacks": len(tracebacks), "problems": tracebacks[:5]}


def fuzz_cli(bodies: list[bytes], home: Path, folder: Path) -> dict:
    """Bodies as input files of `mmel link` run in-process: exit 0, or 2 with one `error:` line."""
    import cli

    counts: Counter = Counter()
    problems: list[str] = []
    for i, body in enumerate(bodies):
        path = folder / f"cli{i % 2}.{'jsonl' if i % 2 else 'json'}"
        path.write_bytes(body)
        err = io.StringIO()
        sys.argv = ["mmel", "link", str(path), "--home", str(home), "--out", str(folder / "out.json")]
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        except Exception as exc:  # noqa: BLE001 - a traceback
            code = f"{type(exc).__name__}: {str(exc)[:100]}"
        lines = [l for l in err.getvalue().splitlines() if l.startswith("error:")]
        ok = code == 0 or (code == 2 and len(lines) == 1)
        counts["ok" if code == 0 else "error_line" if ok else "bad"] += 1
        if not ok:
            problems.append(str(code) + " " + err.getvalue()[-200:])
    return {"scenario": "hypothesis documents → mmel link", "runs": len(bodies), "linked": counts["ok"],
            "rejected_one_line": counts["error_line"], "tracebacks": counts["bad"], "problems": problems[:5]}


def fuzz_server(bodies: list[bytes], linker) -> dict:
    """Bodies POSTed to /link of the app (TestClient re-raises server exceptions): statuses."""
    from fastapi.testclient import TestClient

    from linker.fronts.server import create_app

    statuses: Counter = Counter()
    problems: list[str] = []
    with TestClient(create_app(linker)) as client:
        for body in bodies:
            try:
                r = client.post("/link", content=body, headers={"content-type": "application/json"})
                statuses[r.status_code] += 1
                if r.status_code >= 500 or "error" not in r.json() and r.status_code != 200:
                    problems.append(f"{r.status_code}: {r.text[:100]}")
            except Exception as exc:  # noqa: BLE001 - an unhandled server exception
                statuses["exception"] += 1
                problems.append(f"{type(exc).__name__}: {str(exc)[:100]}")
    five = sum(v for k, v in statuses.items() if k == "exception" or k >= 500)
    return {"scenario": "hypothesis documents → server", "runs": len(bodies),
            "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)}, "5xx_or_tracebacks": five,
            "problems": problems[:5]}


# -- the stand-in KB and linker ------------------------------------------------------------------


def standin(folder: Path, faces: bool) -> Path:
    """A data home `folder` with KB `default`: the gallery people and two places, a hashing
    text index, an untrained reranker and, if `faces`, a dlib face index of the gallery;
    returns the KB folder."""
    from indexer.dense import build_text_index
    from indexer.text import HashingTextEncoder
    from kb.build import build_kb
    from kb.store import KnowledgeBase

    kb_folder = folder / "kbs" / "default"
    kb_folder.mkdir(parents=True, exist_ok=True)
    people = [{"qid": q, "name": n, "description": "person"} for q, n in FACE_PEOPLE.values()]
    places = [{"qid": "Q90", "name": "Paris", "description": "capital of France"},
              {"qid": "Q64", "name": "Berlin", "description": "capital of Germany"}]
    src = kb_folder / "entities.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in people + places), encoding="utf-8")
    build_kb(kb_folder / "kb.sqlite", entities=src, progress=False)
    kb = KnowledgeBase(kb_folder / "kb.sqlite")
    build_text_index(kb, HashingTextEncoder(64), kb_folder, kind="flat", progress=False)
    from linker.features import FEATURES
    from linker.reranker import Reranker, RerankerConfig

    untrained = Reranker(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=tuple(FEATURES),
                                        text_model="hashing:64"))
    untrained.save(folder / "models" / "reranker")  # for `mmel link --home <folder>`
    if faces:
        from indexer.face_encoders import DlibFaceEncoder
        from indexer.faces import build_face_index

        manifest = folder / "faces.jsonl"
        manifest.write_text("".join(json.dumps({"entity": FACE_PEOPLE[d.name][0], "image": str(f)}) + "\n"
                                    for d in sorted(GALLERY.iterdir()) for f in sorted(d.iterdir())))
        build_face_index(kb, DlibFaceEncoder(), manifest, kb_folder, progress=False)
    return kb_folder


SERVE = """
import sys
from pathlib import Path
from indexer.dense import load_text_index
from indexer.text import HashingTextEncoder
from kb.store import KnowledgeBase
from linker.features import FEATURES
from linker.pipeline import Linker
from linker.reranker import Reranker, RerankerConfig
from linker.fronts.server import serve
from linker.visual import VisualLinker
folder = Path(sys.argv[1])
kb = KnowledgeBase(folder / "kb.sqlite")
config = RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=tuple(FEATURES), text_model="hashing:64")
linker = Linker(kb, load_text_index(kb, folder), HashingTextEncoder(64), Reranker(config).eval(),
                visual=VisualLinker.load(kb, folder))
serve(linker, host="127.0.0.1", port=int(sys.argv[2]), max_body_bytes=4_000_000)
"""


def standin_linker(kb_folder: Path):
    """An in-process linker over a stand-in KB folder (hashing encoder, untrained reranker)."""
    from indexer.dense import load_text_index
    from indexer.text import HashingTextEncoder
    from kb.store import KnowledgeBase
    from linker.features import FEATURES
    from linker.pipeline import Linker
    from linker.reranker import Reranker, RerankerConfig

    kb = KnowledgeBase(kb_folder / "kb.sqlite")
    reranker = Reranker(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=tuple(FEATURES))).eval()
    return Linker(kb, load_text_index(kb, kb_folder), HashingTextEncoder(64), reranker)


# -- large images --------------------------------------------------------------------------------


def big_png(side: int = 7000) -> bytes:
    """A `side`² PNG (49 MP at 7000): grey, with a gallery photo at half size in the middle."""
    from PIL import Image

    canvas = Image.new("RGB", (side, side), (200, 200, 200))
    photo = Image.open(GALLERY / "obama" / "obama.jpg").convert("RGB")
    photo = photo.resize((photo.width // 2, photo.height // 2))
    canvas.paste(photo, (side // 2, side // 2))
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return buf.getvalue()


def image_memory(kb_folder: Path, code: Path, requests: int, png: bytes) -> dict:
    """Server RSS: after a warm-up, peak while `requests` large-image requests run at once, and
    3 s after they finished."""
    import httpx
    import psutil

    from benchmarks.load_test import free_port

    port = free_port()
    log_path = kb_folder / f"server-{port}.log"
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(kb_folder), str(port)], cwd=code, env=_env(code),
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_health(url, proc, log_path)
        small = {"id": "w", "text": "Obama in Paris.", "images": [
            {"id": "i", "data": base64.b64encode((GALLERY / "obama" / "obama.jpg").read_bytes()).decode()}]}
        httpx.post(f"{url}/link", json=small, timeout=120).raise_for_status()
        server = psutil.Process(proc.pid)
        baseline = server.memory_info().rss
        peak, done = [baseline], threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(server, peak, done), daemon=True)
        sampler.start()
        doc = {"id": "big", "text": "Obama in Paris.", "images": [{"id": "big", "data": base64.b64encode(png).decode()}]}
        started = time.perf_counter()
        statuses = asyncio.run(_concurrent_posts(f"{url}/link", doc, requests))
        wall = time.perf_counter() - started
        time.sleep(3)
        done.set()
        sampler.join()
        after = server.memory_info().rss
    finally:
        proc.terminate()
        proc.wait(10)
    mb = lambda b: round(b / 2**20)  # noqa: E731
    who = "this checkout" if code.resolve() == ROOT.resolve() else str(code)
    return {"scenario": f"{requests} concurrent {len(png) // 1000} KB PNGs of 49 MP → server ({who})", "runs": requests,
            "code": str(code), "statuses": dict(Counter(map(str, statuses))), "wall_s": round(wall, 1),
            "rss_baseline_mb": mb(baseline), "rss_peak_mb": mb(max(peak)), "rss_after_mb": mb(after)}


def _wait_health(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-1500:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("server did not start")


def _sample_rss(process, peak: list[int], done: threading.Event) -> None:
    while not done.is_set():
        with contextlib.suppress(Exception):
            peak.append(process.memory_info().rss)
        done.wait(0.05)


async def _concurrent_posts(url: str, doc: dict, n: int) -> list[int]:
    import httpx

    async with httpx.AsyncClient(timeout=600) as client:
        async def one():
            try:
                return (await client.post(url, json=doc)).status_code
            except httpx.HTTPError as exc:
                return type(exc).__name__
        return await asyncio.gather(*(one() for _ in range(n)))


# -- the load test -------------------------------------------------------------------------------


def load_test(requests: int) -> dict:
    """`benchmarks/load_test.py` with `requests` `given` requests; its error count."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**_env(), "MMEL_BENCH_RESULTS": tmp}
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load_test.py"), "--requests", str(requests),
                               "--scenarios", "given"], cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode:
            return {"scenario": f"load test, {requests} requests", "runs": requests, "errors": "failed",
                    "problems": [proc.stderr[-300:]]}
        found = json.loads(next(Path(tmp).glob("load_test*.json")).read_text())
    row = found["scenarios"][0]
    return {"scenario": f"load test, {requests} requests at concurrency 8", "runs": requests, "errors": row["errors"],
            "statuses": row["statuses"], "req_per_s": row["requests_per_second"]}


# -- the report ----------------------------------------------------------------------------------


def verdict(row: dict) -> str:
    """One cell: did the scenario hold?"""
    if "killed_mid_run" in row:
        good = (row["intact_after_kill"] == row["runs"] and row["rerun_ok"] and not row["temporaries_after_rerun"]
                and row["killed_mid_run"] == row["runs"])
        return (f"{'ok' if good else 'FAIL'}: {row['killed_mid_run']} killed mid-run, KB intact {row['intact_after_kill']}/"
                f"{row['runs']}, lock free at once {row['lock_free_after_kill']}/{row['runs']}, rerun "
                f"{'ok' if row['rerun_ok'] else 'FAILED'}, {row['temporaries_after_rerun']} temporaries left")
    if "kb_lost" in row:
        good = not row["kb_lost"] and not row["failed_otherwise"]
        return (f"{'ok' if good else 'FAIL'}: {row['completed']} completed, {row['refused_busy']} refused (busy), "
                f"{row['failed_otherwise']} other failures, KB lost {row['kb_lost']} times, "
                f"{row.get('races_overlapped', '?')}/{row['runs']} races with proven overlap")
    if "tracebacks" in row:
        return f"{'ok' if not row['tracebacks'] else 'FAIL'}: {row['tracebacks']} tracebacks"
    if "5xx_or_tracebacks" in row:
        return f"{'ok' if not row['5xx_or_tracebacks'] else 'FAIL'}: {row['5xx_or_tracebacks']} 5xx; {row['statuses']}"
    if "rss_peak_mb" in row:
        return (f"RSS {row['rss_baseline_mb']} → peak {row['rss_peak_mb']} → {row['rss_after_mb']} MB after; "
                f"{row['statuses']}; {row['wall_s']} s")
    return f"{'ok' if row.get('errors') == 0 else 'FAIL'}: {row.get('errors')} errors; {row.get('statuses')}"


def markdown(rows: list[dict], info: dict) -> str:
    lines = ["# Fault suite (`benchmarks/faults.py`)", "",
             f"git {info['git_revision'][:12]}, {info['date']}, {info['cpu_count']} CPUs, {info['memory_gb']} GB", "",
             "| scenario | runs | result |", "|---|---|---|"]
    lines += [f"| {r['scenario']} | {r['runs']} | {verdict(r)} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10, help="SIGKILLs per writer (entities, dump, index).")
    ap.add_argument("--entities", type=int, default=30_000, help="Synthetic entities of the killed builds.")
    ap.add_argument("--dump-mb", type=float, default=20, help="Synthetic dump size for the killed dump builds.")
    ap.add_argument("--rounds", type=int, default=3, help="Races per number of concurrent builders.")
    ap.add_argument("--docs", type=int, default=3000, help="Hypothesis documents (reader and server).")
    ap.add_argument("--cli-docs", type=int, default=200, help="Of those, how many also go through `mmel link`.")
    ap.add_argument("--images", type=int, default=10, help="Concurrent large-image requests (0: skip).")
    ap.add_argument("--code", type=Path, action="append", default=[],
                    help="Also measure the image scenario with the server run from this checkout (repeatable).")
    ap.add_argument("--load-requests", type=int, default=1000, help="Load test requests (0: skip).")
    ap.add_argument("--only", default="kills,builders,fuzz,images,load", help="Comma-separated parts to run.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="JSON path [default: <results>/faults.json].")
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    rng = random.Random(args.seed)
    info = machine("filelock", "hypothesis")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="mmel-faults-") as tmp:
        tmp = Path(tmp)
        home = tmp / "home"
        if parts & {"kills", "builders"}:
            rows += writer_faults(args, parts, tmp, home, rng)
        if "fuzz" in parts:
            rows += fuzz_faults(args, tmp)
        if "images" in parts and args.images:
            kb_folder = standin(tmp / "faces", faces=True)
            png = big_png()
            rows += [image_memory(kb_folder, code, args.images, png) for code in [ROOT, *args.code]]
    if "load" in parts and args.load_requests:
        rows.append(load_test(args.load_requests))
    out = args.out or results_dir() / "faults.json"
    write_json(out, {"benchmark": "faults", "machine": info, "settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows})
    table = markdown(rows, info)
    out.with_suffix(".md").write_text(table)
    print(table)


def writer_faults(args, parts: set[str], tmp: Path, home: Path, rng: random.Random) -> list[dict]:
    from benchmarks.make_synthetic_dump import write_dump
    from benchmarks.make_synthetic_kb import write_kb

    entities = write_kb(tmp / "entities.jsonl", args.entities, seed=args.seed)
    rows = []
    if "kills" in parts:
        dump = tmp / "dump.xml"
        write_dump(dump, args.dump_mb, seed=args.seed)
        rows.append(kill_runs("kb build --entities", ["kb", "build", "--entities", str(entities), "--kb", "e",
                                                      "--no-progress"], home, "e", args.kills, rng))
        rows.append(kill_runs("kb build --dump", ["kb", "build", "--dump", str(dump), "--workers", "2", "--kb", "d",
                                                  "--no-progress"], home, "d", args.kills, rng))
        rows.append(kill_runs("index", ["kb", "index", "--text-model", "hashing", "--kb", "e", "--no-progress"],
                              home, "e", args.kills, rng))
    if "builders" in parts:
        files = [write_kb(tmp / f"race{i}.jsonl", 3000 + 500 * i, seed=i) for i in range(4)]
        rows += [builders(n, files, home, args.rounds, rng) for n in (2, 3, 4)]
        rows.append(build_and_index(files[3], home, args.rounds, rng))
    return rows


def fuzz_faults(args, tmp: Path) -> list[dict]:
    folder = tmp / "fuzz"
    folder.mkdir()
    bodies = payloads(args.docs, args.seed)
    kb_folder = standin(tmp / "text", faces=False)
    rows = [fuzz_reader(bodies, folder), fuzz_cli(bodies[: args.cli_docs], tmp / "text", folder),
            fuzz_server(bodies, standin_linker(kb_folder))]
    return rows


if __name__ == "__main__":
    main()
