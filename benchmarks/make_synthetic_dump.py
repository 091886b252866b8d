"""Generate a synthetic MediaWiki pages-articles dump of a requested size, for benchmarks.

Pages are sampled (seeded) from the real excerpt `../shared/data/wiki/enwiki-sample.xml.bz2`,
so the mix looks like a real dump: long articles with infoboxes, templates, refs, tables and
links with anchors; redirects; disambiguation pages; a few pages in other namespaces. Each
copy gets a fresh title and id (`"Anarchism 17"`), and link targets in a page are suffixed
the same way for a fraction of links, so the set of targets keeps growing with the dump as in a
real one. Output is streamed page by page: memory does not depend on `--mb`.

    python benchmarks/make_synthetic_dump.py --mb 1100 --out benchmarks/work/synthetic-1100.xml
    python benchmarks/make_synthetic_dump.py --mb 100 --out benchmarks/work/s100.xml --bz2
"""
from __future__ import annotations

import argparse
import bz2
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / ".." / "shared" / "data" / "wiki" / "enwiki-sample.xml.bz2"

_PAGE = re.compile(rb"<page>.*?</page>\s*", re.S)
_TITLE = re.compile(rb"<title>([^<]*)</title>")
_ID = re.compile(rb"(<page>\s*<title>[^<]*</title>\s*<ns>-?\d+</ns>\s*<id>)\d+(</id>)")
_REDIRECT = re.compile(rb'(<redirect title=")([^"]*)(")')
_LINK = re.compile(rb"\[\[([^\[\]|:#\n]+)(\||\]\])")


def load_sample(path: Path = SAMPLE) -> tuple[bytes, bytes, list[bytes]]:
    """`(header, footer, page blocks)` of the real sample dump."""
    data = bz2.open(path).read()
    first = data.index(b"<page>")
    pages = _PAGE.findall(data)
    return data[:first], b"</mediawiki>\n", pages


def variant(page: bytes, copy: int, rng: random.Random, next_id: int, link_share: float) -> bytes:
    """`page` with title, id, redirect target and some link targets suffixed by `copy`."""
    if copy == 0:
        return page
    suffix = f" {copy}".encode()
    page = _TITLE.sub(lambda m: b"<title>" + m.group(1) + suffix + b"</title>", page, count=1)
    page = _ID.sub(lambda m: m.group(1) + str(next_id).encode() + m.group(2), page, count=1)
    page = _REDIRECT.sub(lambda m: m.group(1) + m.group(2) + suffix + m.group(3), page, count=1)
    if link_share > 0:
        page = _LINK.sub(
            lambda m: b"[[" + m.group(1) + (suffix if rng.random() < link_share else b"") + m.group(2),
            page,
        )
    return page


def write_dump(out: Path, mb: float, seed: int = 0, compress: bool = False, link_share: float = 0.3) -> dict:
    """Write at least `mb` MiB of uncompressed XML to `out` (bz2-compressed if `compress`)."""
    header, footer, pages = load_sample()
    rng = random.Random(seed)
    target = int(mb * 2**20)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    written = n_pages = 0
    compressor = bz2.BZ2Compressor(9) if compress else None
    with tmp.open("wb") as fh:

        def emit(blob: bytes) -> None:
            nonlocal written
            written += len(blob)
            fh.write(compressor.compress(blob) if compressor else blob)

        emit(header)
        copy = 0
        while written < target:
            order = list(range(len(pages)))
            rng.shuffle(order)
            for i in order:
                emit(variant(pages[i], copy, rng, 10_000_000 + n_pages, link_share))
                n_pages += 1
                if written >= target:
                    break
            copy += 1
        emit(footer)
        if compressor:
            fh.write(compressor.flush())
    tmp.replace(out)
    return {"path": str(out), "pages": n_pages, "uncompressed_mb": round(written / 2**20, 1), "bz2": compress}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, required=True, help="uncompressed size in MiB")
    ap.add_argument("--out", type=Path, required=True, help="output path (.xml or .xml.bz2)")
    ap.add_argument("--bz2", action="store_true", help="bz2-compress the output")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--link-share", type=float, default=0.3, help="share of link targets renamed per copy")
    args = ap.parse_args(argv)
    if not SAMPLE.is_file():
        sys.exit(f"error: real sample {SAMPLE} not found")
    print(write_dump(args.out, args.mb, args.seed, args.bz2, args.link_share))


if __name__ == "__main__":
    main()
