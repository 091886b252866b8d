"""Generate a synthetic entity JSONL of a requested size, for KB-scale benchmarks.

Names and descriptions are recombined (seeded) from the real WikiMEL and Richpedia entity
files: given names and surnames from real people, birth/death places, occupations, languages
and schools from real descriptions, in WikiMEL's description format ("Sex: male. Birth: 1926,
Philadelphia. Occupation: ..."). About a third of the entities get an alias (the surname or an
initialled form), and names repeat as they do in Wikipedia (many "John Smith"s), so the alias
table and the priors grow like a real KB's. Output is streamed: memory does not depend on `--n`.

    python benchmarks/make_synthetic_kb.py --n 100000 --out benchmarks/work/synthetic-kb-100000.jsonl
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA  # noqa: E402

SOURCES = (DATA / "wikimel" / "kb.jsonl", DATA / "richpedia" / "kb.jsonl")
_FIELD = re.compile(r"(Sex|Birth|Death|Occupation|Languages|Alma mater): ([^.]+)\.")
_SURNAME = re.compile(r"^(?!(?:[IVX]+|Jr|Sr)$)[^\W\d_][\w'-]+$")  # not "II", "Jr.", "J."
_QID = re.compile(r"^Q\d+$")  # unlabelled Wikidata values in descriptions
_FALLBACK = {
    "given": ["John", "Mary", "Ahmed", "Li", "Sofia", "Pierre", "Anna", "Kenji", "Olga", "Carlos"],
    "surname": ["Smith", "Garcia", "Wang", "Müller", "Rossi", "Kowalski", "Tanaka", "Silva", "Dubois"],
    "place": ["Chicago", "Paris", "Lagos", "Osaka", "Lima", "Kraków", "Melbourne", "Toronto"],
    "occupation": ["politician", "actor", "lawyer", "singer", "physicist", "painter", "football player"],
    "language": ["English", "French", "Spanish", "German", "Japanese"],
    "school": ["Harvard University", "University of Tokyo", "Sorbonne", "Yale University"],
}


def vocabulary(sources: tuple[Path, ...] = SOURCES) -> dict[str, list[str]]:
    """Name parts and description values seen in the real entity files, most frequent first
    (fallback: a small list)."""
    vocab: dict[str, Counter] = {k: Counter() for k in _FALLBACK}
    for path in sources:
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                obj = json.loads(line)
                parts = re.sub(r"\s*\(.*\)", "", obj.get("name", "")).split()
                if len(parts) >= 2 and all(p[:1].isupper() for p in parts) and _SURNAME.match(parts[-1]):
                    vocab["given"][parts[0]] += 1
                    vocab["surname"][parts[-1]] += 1
                for key, value in _FIELD.findall(obj.get("description", "")):
                    if key in ("Birth", "Death") and ", " in value:
                        vocab["place"][value.split(", ", 1)[1]] += 1
                    elif key == "Occupation":
                        vocab["occupation"].update(v.strip() for v in value.split(",") if not _QID.match(v.strip()))
                    elif key == "Languages":
                        vocab["language"].update(v.strip() for v in value.split(","))
                    elif key == "Alma mater":
                        vocab["school"][value.strip()] += 1
    return {k: [w for w, _ in v.most_common()] if len(v) >= 5 else list(_FALLBACK[k]) for k, v in vocab.items()}


def _skewed(rng: random.Random, words: list[str]) -> str:
    """A word, the frequent ones (at the front) much more often: names repeat as in Wikipedia."""
    return words[int(len(words) * rng.random() ** 3)]


def entity(n: int, rng: random.Random, vocab: dict[str, list[str]]) -> dict:
    """One synthetic person, with a WikiMEL-style description and maybe an alias."""
    given, surname = _skewed(rng, vocab["given"]), _skewed(rng, vocab["surname"])
    middle = f" {rng.choice(vocab['given'])[0]}." if rng.random() < 0.15 else ""
    born = rng.randint(1750, 2005)
    desc = [f"Sex: {rng.choice(('male', 'female'))}", f"Birth: {born}, {_skewed(rng, vocab['place'])}"]
    if born < 1950 or rng.random() < 0.1:
        desc.append(f"Death: {min(2024, born + rng.randint(25, 95))}, {_skewed(rng, vocab['place'])}")
    desc.append("Occupation: " + ", ".join(rng.sample(vocab["occupation"], rng.randint(1, 3))))
    if rng.random() < 0.5:
        desc.append("Languages: " + ", ".join(rng.sample(vocab["language"], rng.randint(1, 2))))
    if rng.random() < 0.3:
        desc.append(f"Alma mater: {_skewed(rng, vocab['school'])}")
    obj = {"qid": f"S{n}", "name": f"{given}{middle} {surname}", "description": ". ".join(desc) + "."}
    r = rng.random()
    if r < 0.2:
        obj["aliases"] = [surname]
    elif r < 0.33:
        obj["aliases"] = [f"{given[0]}. {surname}"]
    return obj


def write_kb(out: str | Path, n: int, seed: int = 0) -> Path:
    """Write `n` synthetic entities to `out` (JSONL); the same seed gives the same file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    vocab = vocabulary()
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps(entity(i, rng, vocab), ensure_ascii=False) + "\n")
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, required=True, help="number of entities")
    ap.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    write_kb(args.out, args.n, args.seed)


if __name__ == "__main__":
    main()
