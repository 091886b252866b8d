"""`mmel link --workers N` and `--ray`: the same output as one process, all-or-nothing `--out`
(resumable shards with --ray), a dead worker or a bad input is a clear error, and a SIGKILLed
run then a rerun gives the uninterrupted output."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# an in-process Ray run once hung with idle workers and nothing pending: fail the test (thread
# method: a stack dump, then exit) instead of waiting out CI's budget; every test here takes < 5 min
pytestmark = pytest.mark.timeout(600, method="thread")

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["Merkel", "Obama", "Paris", "Berlin", "Biden", "France", "Germany", "Paris Hilton", "America"]


def _mmel(*args, home: Path) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), *args, "--home", str(home)]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The tiny KB with a hashing index and an untrained reranker for `mmel link --home`."""
    from indexer.dense import build_text_index
    from indexer.text import HashingTextEncoder
    from linker.features import FEATURES
    from linker.reranker import Reranker, RerankerConfig
    from tiny import build_tiny_kb
    from kb.store import KnowledgeBase

    home = tmp_path_factory.mktemp("corpus")
    kb = KnowledgeBase(build_tiny_kb(home))
    build_text_index(kb, HashingTextEncoder(64), kb.path.parent, kind="flat", progress=False)
    Reranker(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=tuple(FEATURES),
                            text_model="hashing:64")).save(home / "models" / "reranker")
    return home


def _corpus(path: Path, n: int) -> Path:
    """`n` documents naming the tiny KB's entities, some with spans, some to be detected."""
    lines = []
    for i in range(n):
        a, b = NAMES[i % len(NAMES)], NAMES[(i * 7 + 3) % len(NAMES)]
        text = f"{a} met {b} in {NAMES[(i * 5) % len(NAMES)]} on day {i}."
        doc = {"id": str(i), "text": text}
        if i % 3 == 0:
            doc["mentions"] = [{"start": 0, "end": len(a)}]
        lines.append(json.dumps(doc))
    path.write_text("\n".join(lines) + "\n")
    return path


def _link(home, src, out, *extra, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run(_mmel("link", str(src), "--out", str(out), "--batch-size", "8", *extra, home=home),
                          env=_env(), capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_workers_output_is_identical_to_one_process(home, tmp_path):
    src = _corpus(tmp_path / "docs.jsonl", 203)  # not a multiple of the batch size
    one = _link(home, src, tmp_path / "one.jsonl", "--no-progress")
    two = _link(home, src, tmp_path / "two.jsonl", "--workers", "2", "--no-progress")
    a, b = (tmp_path / "one.jsonl").read_bytes(), (tmp_path / "two.jsonl").read_bytes()
    assert a == b and len(a.splitlines()) == 203
    assert any(json.loads(l)["mentions"] for l in a.splitlines())
    for proc in (one, two):  # the summary line
        assert re.search(r"linked 203 documents: \d+ mentions, \d+ links, NIL [\d.]+ %", proc.stderr), proc.stderr
    # json output too (one array), through stdout
    js = subprocess.run(_mmel("link", str(src), "--format", "json", "--workers", "2", "--no-progress", home=home),
                        env=_env(), capture_output=True, text=True, timeout=300)
    assert js.returncode == 0 and json.loads(js.stdout) == [json.loads(l) for l in a.splitlines()]


def test_workers_auto_and_bad_value(home, tmp_path):
    from linker.corpus.workers import parse_workers
    from kb.errors import ConfigError

    assert parse_workers("auto") == os.cpu_count() and parse_workers("3") == 3 and parse_workers(None) == 1
    with pytest.raises(ConfigError, match="'zero'"):
        parse_workers("zero")
    proc = _link(home, _corpus(tmp_path / "d.jsonl", 3), tmp_path / "o.jsonl", "--workers", "0", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: --workers")


def test_a_killed_worker_is_an_error_and_leaves_no_output(home, tmp_path, monkeypatch):
    """In-process: a worker SIGKILLs itself on one chunk; the run fails naming the documents."""
    from kb.errors import LinkerError
    from linker.corpus import workers as corpus
    from linker.fronts.api import link_file

    src = _corpus(tmp_path / "docs.jsonl", 80)
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    real = corpus.link_chunk

    def dying(linker, chunk):
        if chunk[0].id == "40":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(linker, chunk)

    monkeypatch.setattr(corpus, "link_chunk", dying)
    with pytest.raises(corpus.WorkerError, match="worker process died") as exc:
        link_file(src, out, fmt="jsonl", home=home, workers=2, overrides={"batch_size": 8})
    assert isinstance(exc.value, LinkerError)
    first, last = map(int, re.search(r"documents (\d+)-(\d+) were in flight", str(exc.value)).groups())
    assert first <= 41 and last >= 48 and last - first < 4 * 8  # the dead chunk, within the 2 per worker in flight
    assert out.read_text() == "previous\n"  # the earlier output, untouched
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_sigkilled_run_then_rerun_gives_the_uninterrupted_output(home, tmp_path):
    src = _corpus(tmp_path / "docs.jsonl", 3000)
    ref = tmp_path / "ref.jsonl"
    _link(home, src, ref, "--no-progress")
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(_mmel("link", str(src), "--out", str(out), "--batch-size", "8", "--workers", "2",
                                  home=home), env=_env(), stderr=subprocess.PIPE, text=True)
    seen, deadline = "", time.time() + 240
    while time.time() < deadline:  # the progress bar shows linked documents: kill then
        ch = proc.stderr.read(1)
        if not ch:
            break
        seen += ch
        m = re.findall(r"\| *(\d+)/3000 ", seen)
        if m and int(m[-1]) > 0:
            break
    children = __import__("psutil").Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert int(re.findall(r"\| *(\d+)/3000 ", seen)[-1]) < 3000, seen[-300:]
    assert not out.exists()  # all or nothing
    for c in children:  # the workers die with their parent
        try:
            c.wait(timeout=10)
        except __import__("psutil").TimeoutExpired:
            c.kill()
            pytest.fail(f"worker {c.pid} outlived its killed parent")
        except __import__("psutil").NoSuchProcess:
            pass
    _link(home, src, out, "--workers", "2", "--no-progress")
    assert out.read_bytes() == ref.read_bytes()


def _progress(seen: str, total: int) -> int:
    found = re.findall(rf"\| *(\d+)/{total} ", seen)
    return int(found[-1]) if found else 0


def _shards(out: Path) -> bytes:
    manifest = json.loads((out / "manifest.json").read_text())
    return b"".join((out / s["shard"]).read_bytes() for s in manifest["shards"])


def test_ray_sigkilled_run_then_rerun_gives_the_uninterrupted_output(home, tmp_path):
    """`kill -9` of `mmel link --ray` once shards are being written; the rerun resumes."""
    pytest.importorskip("ray.data")
    import psutil

    src = _corpus(tmp_path / "docs.jsonl", 2000)
    ref = tmp_path / "ref.jsonl"
    _link(home, src, ref, "--no-progress")
    out = tmp_path / "shards"
    ray_args = ("--ray", "--ray-actors", "2", "--ray-block", "16")  # 125 shards
    proc = subprocess.Popen(_mmel("link", str(src), "--out", str(out), "--batch-size", "8", *ray_args, home=home),
                            env=_env(), stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen, deadline = "", time.time() + 300
    while time.time() < deadline and _progress(seen, 2000) == 0:  # the first shards are done: kill
        ch = proc.stderr.read(1)
        if not ch:
            break
        seen += ch
    tree = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for c in tree:  # what is left of the local Ray this run started
        try:
            c.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(tree, timeout=30)
    assert 0 < _progress(seen, 2000) < 2000, seen[-500:]
    written = list(out.glob("0*.jsonl"))
    assert 0 < len(written) < 125 and not (out / "manifest.json").exists(), (len(written), seen[-500:])
    again = _link(home, src, out, *ray_args, "--no-progress")
    assert re.search(r"resuming: \d+ of 125 shards already complete", again.stderr), again.stderr[-2000:]
    assert _shards(out) == ref.read_bytes()
    assert "linked 2,000 documents" in again.stderr
    assert not list(out.glob(".*.tmp"))  # half-written shards of the killed run removed


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})  # the actors import this worktree's code
    yield ray
    ray.shutdown()


def test_ray_two_actors_equal_one_process(home, tmp_path, local_ray):
    from linker.corpus.ray_link import link_ray

    src = _corpus(tmp_path / "docs.jsonl", 203)
    ref = tmp_path / "ref.jsonl"
    _link(home, src, ref, "--no-progress")
    load = {"home": home, "overrides": {"batch_size": 8}}
    manifest = link_ray(src, tmp_path / "shards", load=load, actors=2, block=16, progress=False)
    assert len(manifest["shards"]) == 13 and local_ray.is_initialized()  # a Ray it did not start stays up
    assert _shards(tmp_path / "shards") == ref.read_bytes()
    summary = manifest["summary"]
    assert summary["documents"] == 203 and summary["errors"] == 0 and 0 < summary["links"] <= summary["mentions"]
    assert summary["mentions"] == sum(len(json.loads(l)["mentions"]) for l in ref.read_bytes().splitlines())
    # a complete folder: the rerun links nothing and writes the same manifest
    assert link_ray(src, tmp_path / "shards", load=load, actors=2, block=16, progress=False)["shards"] == manifest["shards"]
    # Parquet in a folder, in row groups that do not line up with the blocks
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    folder = tmp_path / "parquet"
    folder.mkdir()
    rows = [json.loads(l) for l in src.read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), folder / "docs.parquet", row_group_size=50)
    link_ray(folder, tmp_path / "pshards", load=load, actors=2, block=16, progress=False)
    assert _shards(tmp_path / "pshards") == ref.read_bytes()


def test_ray_errors_are_one_clear_line(home, tmp_path, local_ray):
    from kb.errors import ConfigError, InputError
    from linker.corpus.ray_link import link_ray

    load = {"home": home, "overrides": {"batch_size": 8}}
    src = _corpus(tmp_path / "docs.jsonl", 40)
    with src.open("a") as fh:
        fh.write('{"id": broken\n')
    with pytest.raises(InputError, match=r"docs.jsonl:41: not valid JSON"):
        link_ray(src, tmp_path / "out", load=load, actors=1, block=16, progress=False)
    assert not (tmp_path / "out" / "manifest.json").exists()
    other = _corpus(tmp_path / "other.jsonl", 5)
    with pytest.raises(ConfigError, match="another input"):  # never mixes the shards of two inputs
        link_ray(other, tmp_path / "out", load=load, actors=1, block=16, progress=False)
    with pytest.raises(ConfigError, match="multiple of the batch size"):
        link_ray(other, tmp_path / "o2", load=load, block=12, progress=False)
    with pytest.raises(ConfigError, match="give --out DIR"):
        link_ray(other, None, load=load, progress=False)


def test_ray_cli_refuses_options_that_do_not_apply(home, tmp_path):
    proc = subprocess.run(_mmel("link", str(_corpus(tmp_path / "d.jsonl", 3)), "--ray", "--workers", "2",
                                "--out", str(tmp_path / "o"), home=home), env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: --ray writes JSONL shards")


def test_ray_missing_is_one_clear_error(home, tmp_path, monkeypatch):
    from kb.errors import ConfigError
    from linker.corpus.ray_link import link_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'mmel\[ray\]'"):
        link_ray(_corpus(tmp_path / "d.jsonl", 3), tmp_path / "o", load={"home": home})
