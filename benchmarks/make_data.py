"""Derived data sets for training and benchmarks, written under benchmarks/work/:

- `merged_kb.jsonl`: the union by qid of WikiMEL's and Richpedia-MEL's `kb.jsonl`;
- `richpedia-train.jsonl` / `richpedia-dev.jsonl`: Richpedia-MEL's train split without / with only
  its last 2,000 documents (the Richpedia dev part: never trained on, used to pick epochs and
  thresholds and to report; Richpedia-MEL ships no dev split of its own);
- `general/` and `general-nil/`: the paragraphs of the Wikipedia excerpt as labelled documents
  against the Vital Articles KB (`mmel kb links`), split by article (30 % of the articles dev,
  by title hash): `train.jsonl`, `dev.jsonl`, `train_articles.txt` (the articles whose anchors
  may become priors); `general/` keeps the links to KB entities only, `general-nil/` marks the
  links to other articles NIL gold;
- with `--halves HOME`: `general-half/`, the general train articles in two halves by sorted
  title (`articles0.txt`, `train0.jsonl`, ...) and under the data home HOME the KBs
  `general-half0` / `general-half1`, the Vital Articles with the anchors of that half only:
  each half's links featurized against the other half's KB are training data that, like new
  text, has gold keys the KB's anchors never saw (`linker.training.mention_train`).

    python benchmarks/make_data.py [--halves HOME]

Where both sets describe the same qid (2,023 people) the longer description is kept (WikiMEL's
are richer: sex, birth, death, occupations, spouse, alma mater); the name is then that row's.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, WORK  # noqa: E402

SOURCES = (DATA / "wikimel" / "kb.jsonl", DATA / "richpedia" / "kb.jsonl")
MERGED = WORK / "merged_kb.jsonl"
RICH_TRAIN, RICH_DEV = WORK / "richpedia-train.jsonl", WORK / "richpedia-dev.jsonl"
RICH_DEV_DOCS = 2000
GENERAL_KB = DATA / "general" / "kb.jsonl"
DUMP = DATA / "wiki" / "enwiki-sample.xml.bz2"
GENERAL, GENERAL_NIL = WORK / "general", WORK / "general-nil"
HALVES = WORK / "general-half"


def merge(paths=SOURCES) -> list[dict]:
    """Entity rows of all `paths`, one per qid, the longest description winning (first on ties)."""
    rows: dict[str, dict] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    old = rows.get(row["qid"])
                    if old is None or len(row.get("description", "")) > len(old.get("description", "")):
                        rows[row["qid"]] = row
    return list(rows.values())


def _write(out: Path, lines: list[str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(out)


def ensure_merged(out: Path = MERGED) -> Path:
    """Write the merged KB to `out` unless it is already there; returns `out`."""
    if not out.is_file():
        _write(out, [json.dumps(r, ensure_ascii=False) + "\n" for r in merge()])
    return out


def ensure_richpedia_split() -> tuple[Path, Path]:
    """(train part, dev part) of Richpedia-MEL's train split, written unless already there."""
    if not (RICH_TRAIN.is_file() and RICH_DEV.is_file()):
        lines = [l for l in (DATA / "richpedia" / "train.jsonl").read_text(encoding="utf-8").splitlines(True) if l.strip()]
        _write(RICH_TRAIN, lines[:-RICH_DEV_DOCS])
        _write(RICH_DEV, lines[-RICH_DEV_DOCS:])
    return RICH_TRAIN, RICH_DEV


def ensure_general_split(unlinked: str = "drop") -> Path:
    """The folder of the general labelled sets (`GENERAL`, or `GENERAL_NIL` with NIL gold),
    written unless already there."""
    from kb.build import build_kb
    from kb.store import KnowledgeBase
    from kb.wikilinks import write_labelled

    out = GENERAL if unlinked == "drop" else GENERAL_NIL
    if not (out / "stats.json").is_file():
        kb = WORK / "general-entities" / "kb.sqlite"
        if not kb.is_file():
            build_kb(kb, entities=GENERAL_KB, progress=False)
        out.mkdir(parents=True, exist_ok=True)
        write_labelled(DUMP, KnowledgeBase(kb), out, unlinked=unlinked, progress=False)
    return out


def ensure_general_halves(home: Path, out: Path = HALVES) -> list[Path]:
    """The two halves of the general train split (see the module docstring) and their KBs
    under `home`, each written unless present; the halves' labelled files."""
    from kb.build import build_kb
    from kb.home import kb_path

    split = ensure_general_split()
    titles = sorted(t for t in (split / "train_articles.txt").read_text(encoding="utf-8").splitlines() if t)
    lines = (split / "train.jsonl").read_text(encoding="utf-8").splitlines()
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i in (0, 1):
        half = titles[i::2]
        arts, train = out / f"articles{i}.txt", out / f"train{i}.jsonl"
        if not train.is_file():
            arts.write_text("".join(t + "\n" for t in half), encoding="utf-8")
            keep = set(half)
            train.write_text("".join(ln + "\n" for ln in lines if json.loads(ln)["article"] in keep), encoding="utf-8")
        if not kb_path(home, f"general-half{i}").is_file():
            build_kb(kb_path(home, f"general-half{i}"), entities=GENERAL_KB, dump=DUMP, dump_articles=arts, progress=False)
        files.append(train)
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--halves", default=None, metavar="HOME",
                        help="also the general train halves and their KBs under the data home HOME")
    args = parser.parse_args(argv)
    general = [ensure_general_split() / f for f in ("train.jsonl", "dev.jsonl")]
    general += [ensure_general_split("nil") / f for f in ("train.jsonl", "dev.jsonl")]
    if args.halves:
        general += ensure_general_halves(Path(args.halves))
    for path in (ensure_merged(), *ensure_richpedia_split(), *general):
        print(f"{path}: {sum(1 for _ in open(path, encoding='utf-8'))} lines")


if __name__ == "__main__":
    main()
