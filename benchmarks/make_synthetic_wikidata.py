"""Generate a synthetic Wikidata JSON dump of N lines, for the `kb build --wikidata` benchmark.

Items have the structure of `latest-all.json` (Wikibase's JSON dump format: one JSON array,
one entity per line, lines ending with ','): labels, descriptions and aliases in several
languages, sitelinks with titles and badges, and full statements (mainsnak with hash and
datavalue, statement id, rank, qualifiers, references) for `P31`, `P279`, `P18` and the other
properties a real item carries (dates, coordinates, external ids, quantities). The mix is
seeded and skewed as in Wikidata: most items have few sitelinks and labels, a few have
hundreds; people, places, scholarly articles, taxa and classes; about 2 % have no English
label and 1 % of the lines are properties. Output is streamed line by line: memory does not
depend on N, and a smaller dump (same seed) is a prefix of a larger one.

    python benchmarks/make_synthetic_wikidata.py --lines 100000 --out benchmarks/work/wikidata-100000.json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

LANGS = ["en", "de", "fr", "es", "it", "nl", "pl", "ru", "ja", "zh", "pt", "sv", "uk", "ar", "fa", "ca", "cs",
         "fi", "hu", "ko", "tr", "he", "id", "vi", "ro", "da", "no", "el", "bg", "sr", "eo", "eu"]
SYLLABLES = ["an", "ber", "cor", "dal", "el", "fen", "gar", "hol", "is", "jan", "kel", "lor", "mar", "nor",
             "os", "par", "quin", "ros", "sel", "tor", "ul", "ven", "wil", "xan", "yor", "zel"]
KINDS = [  # (share, P31 class, description, typical other properties)
    (0.35, "Q13442814", "scholarly article", ("P577", "P1476", "P356", "P2093", "P2093", "P2093", "P1433")),
    (0.20, "Q5", "human", ("P21", "P569", "P570", "P27", "P106", "P735", "P734", "P214", "P646")),
    (0.15, "Q16521", "taxon", ("P225", "P105", "P171", "P846", "P685")),
    (0.15, "Q486972", "human settlement", ("P17", "P625", "P131", "P1082", "P281", "P646")),
    (0.10, "Q4167836", "Wikimedia category", ("P301",)),
    (0.05, "Q2221906", "class of things", ("P279", "P279", "P910", "P646")),
]
_KIND_WEIGHTS = [k[0] for k in KINDS]
WIKIS = [f"{lang}wiki" for lang in LANGS] + [f"{lang}wikiquote" for lang in LANGS] + [f"x{i}wiki" for i in range(300)]


def _word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def _name(rng: random.Random) -> str:
    return " ".join(_word(rng, rng.randint(2, 3)) for _ in range(rng.choice((1, 2, 2, 3))))


def _hash(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def _value(rng: random.Random, prop: str) -> tuple[dict, str]:
    """`(datavalue, datatype)` of a plausible value for `prop`."""
    if prop in ("P31", "P279", "P21", "P27", "P106", "P735", "P734", "P17", "P131", "P105", "P171", "P1433",
                "P301", "P910"):
        q = rng.randint(1, 120_000_000)
        return {"value": {"entity-type": "item", "numeric-id": q, "id": f"Q{q}"}, "type": "wikibase-entityid"}, "wikibase-item"
    if prop in ("P569", "P570", "P577"):
        y = rng.randint(1500, 2024)
        return {"value": {"time": f"+{y}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00Z", "timezone": 0,
                          "before": 0, "after": 0, "precision": 11,
                          "calendarmodel": "http://www.wikidata.org/entity/Q1985727"}, "type": "time"}, "time"
    if prop == "P625":
        return {"value": {"latitude": rng.uniform(-60, 70), "longitude": rng.uniform(-180, 180), "altitude": None,
                          "precision": 0.0001, "globe": "http://www.wikidata.org/entity/Q2"},
                "type": "globecoordinate"}, "globe-coordinate"
    if prop == "P1082":
        return {"value": {"amount": f"+{rng.randint(10, 5_000_000)}", "unit": "1"}, "type": "quantity"}, "quantity"
    if prop == "P1476":
        return {"value": {"text": _name(rng) + " of " + _name(rng), "language": "en"},
                "type": "monolingualtext"}, "monolingualtext"
    if prop == "P18":
        return {"value": f"{_name(rng)} {rng.randint(1950, 2024)}.jpg", "type": "string"}, "commonsMedia"
    return {"value": f"{rng.getrandbits(40):x}", "type": "string"}, "external-id"


def _snak(rng: random.Random, prop: str) -> dict:
    datavalue, datatype = _value(rng, prop)
    return {"snaktype": "value", "property": prop, "hash": _hash(rng), "datavalue": datavalue, "datatype": datatype}


def _statement(rng: random.Random, qid: str, prop: str) -> dict:
    st = {"mainsnak": _snak(rng, prop), "type": "statement",
          "id": f"{qid}${rng.getrandbits(128):032X}", "rank": "deprecated" if rng.random() < 0.01 else "normal"}
    if rng.random() < 0.15:
        st["qualifiers"] = {"P580": [_snak(rng, "P569")]}
        st["qualifiers-order"] = ["P580"]
    if rng.random() < 0.6:
        st["references"] = [{"hash": _hash(rng), "snaks": {"P248": [_snak(rng, "P31")], "P813": [_snak(rng, "P577")]},
                             "snaks-order": ["P248", "P813"]}]
    return st


def _sitelink_count(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.55:
        return 0
    if r < 0.80:
        return rng.randint(1, 3)
    if r < 0.95:
        return rng.randint(4, 25)
    return min(int(rng.paretovariate(1.2) * 25), 330)


def make_item(rng: random.Random, n: int) -> dict:
    """One synthetic item `Q<n>`."""
    qid = f"Q{n}"
    share, cls, what, props = rng.choices(KINDS, weights=_KIND_WEIGHTS)[0]
    links = _sitelink_count(rng)
    n_langs = min(len(LANGS), max(1, links // 2 + rng.randint(0, 3)))
    langs = LANGS[:n_langs] if rng.random() > 0.02 else LANGS[1 : n_langs + 1]  # ~2 %: no English label
    name = _name(rng)
    labels = {lang: {"language": lang, "value": name if rng.random() < 0.7 else _name(rng)} for lang in langs}
    descriptions = {lang: {"language": lang, "value": f"{what} ({_word(rng, 2)})"} for lang in langs[: max(1, n_langs // 2)]}
    aliases = {lang: [{"language": lang, "value": _name(rng)} for _ in range(rng.randint(1, 3))]
               for lang in langs[:3] if rng.random() < 0.35}
    claims: dict[str, list] = {"P31": [_statement(rng, qid, "P31")]}
    claims["P31"][0]["mainsnak"]["datavalue"]["value"].update({"numeric-id": int(cls[1:]), "id": cls})
    for prop in props:
        claims.setdefault(prop, []).append(_statement(rng, qid, prop))
    if cls == "Q5" and rng.random() < 0.3 or cls == "Q486972" and rng.random() < 0.4:
        claims["P18"] = [_statement(rng, qid, "P18")]
    sitelinks = {site: {"site": site, "title": name if rng.random() < 0.8 else _name(rng), "badges": []}
                 for site in WIKIS[:links]}
    return {"type": "item", "id": qid, "labels": labels, "descriptions": descriptions, "aliases": aliases,
            "claims": claims, "sitelinks": sitelinks, "pageid": n + 100, "ns": 0, "title": qid,
            "lastrevid": 2_000_000_000 + n, "modified": "2024-05-01T12:00:00Z"}


def make_property(rng: random.Random, n: int) -> dict:
    pid = f"P{n}"
    return {"type": "property", "datatype": "external-id", "id": pid,
            "labels": {"en": {"language": "en", "value": _name(rng) + " ID"}}, "descriptions": {}, "aliases": {},
            "claims": {}, "pageid": n, "ns": 120, "title": f"Property:{pid}", "lastrevid": 1, "modified": "2024-05-01T12:00:00Z"}


def write_wikidata_dump(out: Path, lines: int, seed: int = 0) -> dict:
    """Write a dump of `lines` entity lines to `out` (atomically); returns its counts."""
    rng = random.Random(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    written = 0
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        for n in range(1, lines + 1):
            ent = make_property(rng, n) if rng.random() < 0.01 else make_item(rng, n)
            line = json.dumps(ent, ensure_ascii=False, separators=(",", ":"))
            fh.write(line + (",\n" if n < lines else "\n"))
            written += len(line) + 2
        fh.write("]\n")
    tmp.replace(out)
    return {"lines": lines, "bytes": out.stat().st_size}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(json.dumps(write_wikidata_dump(args.out, args.lines, args.seed)))


if __name__ == "__main__":
    sys.exit(main())
