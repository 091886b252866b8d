"""Derived data sets for training and benchmarks, written under benchmarks/work/:

- `merged_kb.jsonl`: the union by qid of WikiMEL's and Richpedia-MEL's `kb.jsonl`;
- `richpedia-train.jsonl` / `richpedia-dev.jsonl`: Richpedia-MEL's train split without / with only
  its last 2,000 documents (the Richpedia dev part: never trained on, used to pick epochs and
  thresholds and to report; Richpedia-MEL ships no dev split of its own).

    python benchmarks/make_data.py

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    for path in (ensure_merged(), *ensure_richpedia_split()):
        print(f"{path}: {sum(1 for _ in open(path, encoding='utf-8'))} lines")


if __name__ == "__main__":
    main()
