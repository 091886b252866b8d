"""The per-KB write lock: a second writer fails at once naming the holder, readers are never
blocked, a killed holder releases it, and stale temporaries are cleared."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kb.build import build_kb
from kb.errors import KBBusyError, KBError
from kb.lock import LOCK_FILE, WriteLock
from kb.store import KBWriter, KnowledgeBase
from tiny import TINY_ENTITIES, build_tiny_kb

ROOT = Path(__file__).resolve().parents[2]


def _hold_lock(kb_dir: Path, fork_child: bool = False) -> subprocess.Popen:
    """A process that takes the KB's write lock (optionally forks a child that outlives it),
    prints 'held' and sleeps."""
    code = textwrap.dedent(f"""
        import os, sys, time
        from kb.lock import WriteLock
        lock = WriteLock({str(kb_dir)!r}, "built").acquire()
        if {fork_child!r}:
            r, w = os.pipe()
            if os.fork() == 0:
                os.write(w, b"x")  # the at-fork hooks have run in the child
                time.sleep(30); os._exit(0)
            os.read(r, 1)
        print("held", flush=True)
        time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_fails_at_once_naming_the_holder_and_readers_still_read(tmp_path):
    kb_path = build_tiny_kb(tmp_path / "kbs" / "w")
    holder = _hold_lock(kb_path.parent)
    try:
        with pytest.raises(KBBusyError, match=rf"KB 'w' is being built by process {holder.pid} \(since "):
            build_kb(kb_path, entities=kb_path.parent / "entities.jsonl", progress=False)
        assert len(KnowledgeBase(kb_path)) == len(TINY_ENTITIES)  # the reader is not blocked
    finally:
        holder.kill()
        holder.wait()
    build_kb(kb_path, entities=kb_path.parent / "entities.jsonl", progress=False)  # released by the kill


def test_lock_released_when_holder_is_killed_even_with_a_forked_child_alive(tmp_path):
    holder = _hold_lock(tmp_path, fork_child=True)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    WriteLock(tmp_path, "checked").acquire().release()  # the child's copy of the descriptor was closed


def test_same_process_second_writer_is_refused_and_lock_released_after_finish_and_abort(tmp_path):
    with KBWriter(tmp_path / "kb.sqlite") as w:
        with pytest.raises(KBBusyError, match=f"process {os.getpid()}"):
            KBWriter(tmp_path / "kb.sqlite")
        w.abort()
    WriteLock(tmp_path, "checked").acquire().release()
    holder = json.loads((tmp_path / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid() and holder["doing"] == "checked"


def test_stale_temporaries_removed_and_builds_use_unique_names(tmp_path):
    folder = tmp_path / "kbs" / "default"
    folder.mkdir(parents=True)
    stale = [folder / ".kb.sqlite.123-abcd.tmp", folder / ".text.faiss.9.tmp", folder / "kb.sqlite.tmp",
             folder / ".kb.sqlite.123-abcd.tmp-journal"]
    for p in stale:
        p.write_text("half-written")
    keep = folder / "notes.txt"
    keep.write_text("mine")
    with KBWriter(folder / "kb.sqlite") as w:
        assert w.tmp.name.startswith(".kb.sqlite.") and w.tmp.name.endswith(".tmp")
        assert not any(p.exists() for p in stale) and keep.exists()


def test_index_of_a_kb_rebuilt_meanwhile_is_refused(tmp_path):
    from indexer.dense import build_text_index
    from indexer.text import HashingTextEncoder

    kb_path = build_tiny_kb(tmp_path / "kbs" / "default")
    opened = KnowledgeBase(kb_path)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"qid": "Q1", "name": "Universe"}) + "\n")
    build_kb(kb_path, entities=other, progress=False)
    with pytest.raises(KBError, match="was rebuilt after this command opened it"):
        build_text_index(opened, HashingTextEncoder(16), kb_path.parent, progress=False)


def test_index_and_faces_refused_while_a_build_holds_the_lock(tmp_path):
    from indexer.dense import build_text_index
    from indexer.faces import build_face_index
    from indexer.text import HashingTextEncoder

    kb_path = build_tiny_kb(tmp_path / "kbs" / "w")
    store = KnowledgeBase(kb_path)
    (tmp_path / "g" / "Q76").mkdir(parents=True)
    (tmp_path / "g" / "Q76" / "a.jpg").write_bytes(b"not read")
    holder = _hold_lock(kb_path.parent)
    try:
        with pytest.raises(KBBusyError, match="being built"):
            build_text_index(store, HashingTextEncoder(16), kb_path.parent, progress=False)
        with pytest.raises(KBBusyError, match="being built"):
            build_face_index(store, object(), tmp_path / "g", kb_path.parent, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert not (kb_path.parent / "text.faiss").exists()
