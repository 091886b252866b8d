import dataclasses

import numpy as np

from kb.types import Document, TextMention
from linker.candidates import (CandidateConfig, CandidateGenerator, _is_part, _longer_keys, document_word_sets,
                               document_words)
from linker.mentions import spot


def _mention(text, surface):
    start = text.index(surface)
    return TextMention(start, start + len(surface), surface)


def _gen(linker, **cfg):
    return CandidateGenerator(linker.kb, linker.index, CandidateConfig(**cfg))


def _ids(linker, mc):
    return [e.id for e in linker.kb.by_idx(mc.idxs)]


def test_is_part():
    assert _is_part("powers", "stefanie powers")
    assert not _is_part("stefanie powers", "stefanie powers")
    assert not _is_part("owers", "stefanie powers")


def test_longer_keys_are_the_keys_a_key_is_part_of():
    keys = ["powers", "stefanie powers", "stefanie", "kim", "kim hyun-soo", "hyun-soo kim", "", "powers powers",
            "jim powers", "owers"]
    longer = _longer_keys(keys)
    assert longer == {k: [o for o in keys if _is_part(k, o)] for k in keys}
    assert longer["powers"] == ["stefanie powers", "powers powers", "jim powers"] and longer[""] == []


def test_document_word_sets_as_document_words():
    # spans at word edges take the document's words once tokenized; spans that cut a word (or
    # end before a combining mark, or follow a letter only folding reveals) take the long way
    text = "Hillary Clinton met Bill Clinton. Clintons' Möller ﬁnal Cafe\u0301 Ⓐx in 1999!"
    spans = [("Hillary Clinton", 0), ("Bill", 0), ("Clinton.", 0), ("Clinton", text.index("Clintons")),
             ("Möller", 0), ("nal", 0), ("Cafe", 0), ("x", text.index("Ⓐ")), ("99", 0), ("1999!", 0), (text, 0)]
    mentions = [TextMention(i := text.index(surface, at), i + len(surface), surface) for surface, at in spans]
    sets = document_word_sets(text, mentions)
    assert sets == [document_words(text, m) for m in mentions]
    assert "clinton" in sets[0] and "hillary" not in sets[0]  # "Clinton" is also written outside the span
    assert "clintons" not in sets[3] and "s" in sets[3]  # the long way: the cut word's rest is a word


def test_prior_candidates_and_reduction(tiny_linker):
    text = "Paris is lovely in spring."
    m = _mention(text, "Paris")
    ctx = tiny_linker.encoder.encode([text])
    [[mc]] = _gen(tiny_linker, keep_prior=1, keep_context=0, dense_k=0).generate([text], [[m]], ctx)
    assert len(mc.idxs) == 1 and len(mc.ranked_pool) == 2  # 30-pool holds both Parises, 1 kept
    assert set(_ids(tiny_linker, mc)) <= {"Q90", "Q167646"}
    [[full]] = _gen(tiny_linker, keep_prior=None, dense_k=0).generate([text], [[m]], ctx)
    assert set(_ids(tiny_linker, full)) == {"Q90", "Q167646"}
    assert all("prior" in s for s in full.sources)


def test_coreference_finds_full_name(tiny_linker):
    text = "Michelle Obama spoke. Later Obama left."
    m1 = _mention(text, "Michelle Obama")
    m2 = TextMention(text.rindex("Obama"), text.rindex("Obama") + 5, "Obama")
    ctx = tiny_linker.encoder.encode([text, text])
    [[_, mc]] = _gen(tiny_linker, keep_prior=1, keep_context=0, dense_k=0).generate([text], [[m1, m2]], ctx)
    ids = _ids(tiny_linker, mc)
    assert "Q13133" in ids
    assert "coref" in mc.sources[ids.index("Q13133")]


def test_document_evidence_beats_prior(tiny_linker):
    """A surname goes to the person the document names in full, whatever the prior says."""
    gen = _gen(tiny_linker, dense_k=0)
    for text, surface, want, other in [
        ("Michelle Obama spoke in Paris. Obama then flew home.", "Obama", "Q13133", "Q76"),
        ("Barack Obama spoke in Paris. Obama then flew home.", "Obama", "Q76", "Q13133"),
    ]:
        m = TextMention(text.rindex(surface), text.rindex(surface) + len(surface), surface)
        [[mc]] = gen.generate([text], [[m]], tiny_linker.encoder.encode([text]))
        ids = _ids(tiny_linker, mc)
        assert ids[0] == want and mc.in_document[0] == 1.0
        assert mc.in_document[ids.index(other)] == 0.0
        assert [e.id for e in mc.entities] == ids and mc.vectors.shape == (len(ids), tiny_linker.index.dim)


def test_fuzzy_and_dense_for_unknown_surface(tiny_linker):
    text = "Angela Merkle visited."  # misspelt
    m = _mention(text, "Angela Merkle")
    ctx = tiny_linker.encoder.encode([text])
    [[mc]] = _gen(tiny_linker, dense_k=2).generate([text], [[m]], ctx)
    ids = _ids(tiny_linker, mc)
    assert "Q567" in ids
    assert "fuzzy" in mc.sources[ids.index("Q567")]
    assert any("dense" in s for s in mc.sources)


def test_spotter_finds_longest_known_names(tiny_linker):
    text = "Barack Obama met Angela Merkel in Berlin, not in Paris."
    found = [m.surface for m in spot(text, tiny_linker.kb)]
    assert found == ["Barack Obama", "Angela Merkel", "Berlin", "Paris"]
    assert all(text[m.start:m.end] == m.surface for m in spot(text, tiny_linker.kb))


def test_linker_links_given_and_detected_mentions(tiny_linker):
    doc = Document(id="d", text="Merkel in Berlin.", mentions=(TextMention(0, 6, "Merkel"),))
    [link] = tiny_linker.link(doc)
    assert link.mention == doc.mentions[0]
    assert "Q567" in [c.entity for c in link.candidates]  # the reranker here is untrained
    top = link.candidates[0]  # linked to the best candidate exactly when it clears the NIL cutoff
    assert link.entity == (top.entity if top.score >= tiny_linker.config.nil_cutoff else None)
    assert link.score == top.score
    from linker.pipeline import Linker

    for cutoff, entity in ((top.score + 1e-3, None), (top.score, top.entity)):  # NIL just above the best score
        lk = Linker(tiny_linker.kb, tiny_linker.index, tiny_linker.encoder, tiny_linker.reranker,
                    dataclasses.replace(tiny_linker.config, nil_threshold=cutoff))
        [at] = lk.link(doc)
        assert at.entity == entity and at.candidates[0].entity == top.entity
    assert [c.score for c in link.candidates] == sorted((c.score for c in link.candidates), reverse=True)
    links = tiny_linker.link(Document(id="e", text="Merkel in Berlin."))
    assert [l.mention.surface for l in links] == ["Merkel", "Berlin"]
    empty = tiny_linker.link(Document(id="f", text="nothing to see here"))
    assert empty == []


def test_long_form_of_a_name_keeps_the_variants_prior(tiny_linker):
    text = "Angela Dorothea Merkel spoke."  # unknown surface; its first + last form is known
    m = _mention(text, "Angela Dorothea Merkel")
    [[mc]] = _gen(tiny_linker, dense_k=0).generate([text], [[m]], tiny_linker.encoder.encode([text]))
    ids = _ids(tiny_linker, mc)
    assert ids[0] == "Q567" and mc.priors[0] > 0 and "fuzzy" in mc.sources[0]


class MemoryKB:
    """A `CandidateKB` in a few dicts: entity rows, and p(e|m) per mention key."""

    def __init__(self, entities, priors):
        from kb.types import Entity

        self.entities = [Entity(id=q, name=n, description=d) for q, n, d in entities]
        self.priors = priors  # key -> [(idx, p)], most probable first

    def prior_candidates(self, key, k):
        return self.priors.get(key, [])[:k]

    def mention_info(self, keys):
        return {k: (1.0, len(self.priors[k]), None) for k in keys if k in self.priors}

    def iter_mentions(self):
        return ((k, 1.0, len(v)) for k, v in self.priors.items())

    def by_idx(self, idxs):
        return [self.entities[i] for i in idxs]


class MemoryIndex:
    """A `VectorIndex` over a numpy matrix (exact inner-product search)."""

    def __init__(self, vectors):
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.dim = vectors.shape[1]

    def search(self, queries, k, ef_search=None):
        scores = queries @ self.vectors.T
        ids = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(scores, ids, 1), ids

    def reconstruct(self, ids):
        return self.vectors[ids]


def test_generation_runs_on_in_memory_kb_and_index():
    """The document's own words beat the prior ("Clinton" after "Hillary Clinton"), the nearest
    entity by context joins the pool, and an unknown long name falls back to its first + last."""
    kb = MemoryKB(
        [("Q1", "Bill Clinton", "president"), ("Q2", "Hillary Clinton", "secretary of state"),
         ("Q3", "Moon", "satellite"), ("Q4", "Gerald Ford", "president")],
        {"clinton": [(0, 0.8), (1, 0.2)], "hillary clinton": [(1, 1.0)], "gerald ford": [(3, 1.0)]},
    )
    index = MemoryIndex(np.eye(4, dtype=np.float32) + 0.01)
    gen = CandidateGenerator(kb, index, CandidateConfig(dense_k=1))
    text = "Hillary Clinton spoke. Clinton then left. Gerald Rudolph Ford waved."
    mentions = [TextMention(0, 15, "Hillary Clinton"), TextMention(23, 30, "Clinton"),
                TextMention(42, 61, "Gerald Rudolph Ford")]
    assert [text[m.start : m.end] for m in mentions] == [m.surface for m in mentions]
    contexts = np.asarray([[0, 0, 1, 0]] * 3, np.float32)  # every context is nearest to the Moon
    _, short, long_name = gen.generate([text], [mentions], contexts)[0]
    assert [e.name for e in short.entities][:2] == ["Hillary Clinton", "Bill Clinton"]  # pool order: evidence
    assert short.in_document[0] == 1.0 and short.in_document[1] == 0.0
    assert "Moon" in [e.name for e in short.entities] and "dense" in short.sources[-1]
    assert long_name.entities[0].name == "Gerald Ford" and long_name.priors[0] == 1.0


def test_keep_4_plus_3_takes_the_best_by_prior_then_the_nearest_by_context():
    """`--keep 4+3`: of ten "Smith"s ranked by prior, the four best, then the three of the other six
    nearest the context (not the next three by prior); `all` keeps the ten as ranked."""
    from linker.fronts.api import parse_keep

    n = 10
    kb = MemoryKB([(f"Q{i}", f"Smith {chr(65 + i)}", "person") for i in range(n)],
                  {"smith": [(i, (n - i) / 100) for i in range(n)]})  # prior falls with i
    vectors = np.eye(n, dtype=np.float32)
    index = MemoryIndex(vectors)
    context = vectors[[9, 5, 7]].sum(0, keepdims=True)  # nearest: 9, 5 and 7, the worst by prior among the rest
    text = "Smith spoke."
    m = TextMention(0, 5, "Smith")
    config = parse_keep("4+3")
    assert (config.keep_prior, config.keep_context) == (4, 3)
    [[mc]] = CandidateGenerator(kb, index, dataclasses.replace(config, dense_k=0, fuzzy_k=0)).generate([text], [[m]], context)
    assert list(mc.ranked_pool) == list(range(n))
    assert list(mc.idxs[:4]) == [0, 1, 2, 3] and sorted(mc.idxs[4:]) == [5, 7, 9]
    [[full]] = CandidateGenerator(kb, index, dataclasses.replace(parse_keep("all"), dense_k=0, fuzzy_k=0)).generate(
        [text], [[m]], context)
    assert list(full.idxs) == list(range(n))
    assert (parse_keep("2+5").keep_prior, parse_keep("2+5").keep_context) == (2, 5)


def test_enclosing_name():
    from linker.candidates import enclosing_name

    def around(text, surface):
        start = text.index(surface)
        return enclosing_name(text, start, start + len(surface))

    assert around("Karl Friedrich von Gaertner was a botanist.", "Gaertner") == "Karl Friedrich von Gaertner"
    assert around("Emperor Gaozong of Song , personal name Zhao Gou", "Emperor") == "Emperor Gaozong of Song"
    assert around("his cousin, King George V in 1913", "George") == "King George V"  # not across the comma
    assert around("Frederick, Prince of Hohenzollern was the son of William", "Hohenzollern") == \
        "Frederick, Prince of Hohenzollern"  # but across the comma of "Name, Rank of Place"
    assert around('Marie "Mimí" Lisbeth Langer was an Austrian-born psychoanalyst', "Langer") == \
        'Marie "Mimí" Lisbeth Langer'  # a quoted nickname stays inside the name
    assert around("Philip II of Macedon, Alexander's father", "Alexander") is None  # a possessive is no longer name
    assert around("Portrait of Johnson by William F. Cogswell", "Johnson") is None  # "Portrait" is no name
    assert around("The bust of Pyriev, on the bank", "Pyriev") is None
    assert around("Gerald Ford spoke.", "Gerald Ford") is None


def test_names_the_text_writes_around_the_span_and_other_surface_forms():
    """A span inside a longer name gets that name's candidates; an unknown surface is looked up
    without its possessive and in the other name order."""
    kb = MemoryKB(
        [("Q1", "Joseph Gaertner", "botanist"), ("Q2", "Karl Friedrich von Gaertner", "botanist"),
         ("Q3", "Jan Masaryk", "diplomat"), ("Q4", "Kim Hyun-soo", "baseball player")],
        {"gaertner": [(0, 0.9)], "karl friedrich von gaertner": [(1, 1.0)], "masaryk": [(2, 1.0)],
         "kim hyun-soo": [(3, 1.0)]},
    )
    gen = CandidateGenerator(kb, MemoryIndex(np.eye(4, dtype=np.float32)), CandidateConfig(dense_k=0))
    text = "Karl Friedrich von Gaertner was the son of Joseph Gaertner. Masaryk´s quote. Hyun-soo Kim (Korean: 김현수)."
    mentions = [_mention(text, "Gaertner"), _mention(text, "Masaryk´s"), _mention(text, "Hyun-soo Kim")]
    gaertner, masaryk, kim = gen.generate([text], [mentions], np.zeros((3, 4), np.float32))[0]
    names = [e.name for e in gaertner.entities]
    assert "Karl Friedrich von Gaertner" in names and "coref" in gaertner.sources[names.index("Karl Friedrich von Gaertner")]
    assert [e.name for e in masaryk.entities] == ["Jan Masaryk"] and masaryk.priors[0] == 1.0
    assert [e.name for e in kim.entities] == ["Kim Hyun-soo"]


def test_equal_priors_are_ordered_by_context_and_popularity():
    """A surname shared by many entities ("Johnson") gives them one prior: the better known
    (longer description) comes first when the pool is cut, unless `popularity` is 0."""
    kb = MemoryKB(
        [("Q1", "Andrew Johnson", "politician"), ("Q2", "Ben Johnson", "sprinter"),
         ("Q3", "Lyndon B. Johnson", "36th president of the United States, " * 5)],
        {"johnson": [(0, 1.0), (1, 1.0), (2, 1.0)]},
    )
    text = "Johnson in 1942"
    mention = [_mention(text, "Johnson")]
    context = np.zeros((1, 3), np.float32)
    top = CandidateGenerator(kb, MemoryIndex(np.eye(3, dtype=np.float32)), CandidateConfig(top=1, dense_k=0))
    assert [e.name for e in top.generate([text], [mention], context)[0][0].entities] == ["Lyndon B. Johnson"]
    flat = CandidateGenerator(kb, MemoryIndex(np.eye(3, dtype=np.float32)), CandidateConfig(top=1, dense_k=0, popularity=0.0))
    assert [e.name for e in flat.generate([text], [mention], context)[0][0].entities] == ["Andrew Johnson"]


def test_unknown_surface_finds_its_rare_words_and_fuzzy_keys_beside_its_variants():
    """A broken or over-long span the KB does not know ("Salza (or Hermann") is looked up by
    its words that name few entities ("salza"), and by fuzzy keys even when a variant of it
    ("prince") is known; a word shared by many entities ("hermann") adds nothing."""
    kb = MemoryKB(
        [("Q1", "Hermann von Salza", "Grand Master"), ("Q2", "Hermann Hesse", "writer"),
         ("Q3", "Hermann Weyl", "mathematician"), ("Q4", "Hermann Oberth", "physicist"),
         ("Q5", "Hermann Minkowski", "mathematician"), ("Q6", "Prince", "musician"),
         ("Q7", "Prince William of Schaumburg-Lippe", "prince")],
        {"salza": [(0, 1.0)], "hermann": [(1, 0.3), (2, 0.3), (3, 0.2), (4, 0.2)], "prince": [(5, 1.0)],
         "prince william of schaumburg-lippe": [(6, 1.0)]},
    )
    gen = CandidateGenerator(kb, MemoryIndex(np.eye(7, dtype=np.float32)), CandidateConfig(dense_k=0))
    assert gen._rare_words("Salza (or Hermann") == ["salza"]
    text = "Hermann von Salza (or Hermann of Salza) led the order. Son of the Prince of Schaumburg-Lippe."
    broken, title = gen.generate([text], [[_mention(text, "Salza (or Hermann"), _mention(text, "Prince of Schaumburg-Lippe")]],
                                 np.zeros((2, 7), np.float32))[0]
    assert [e.name for e in broken.entities] == ["Hermann von Salza"] and broken.priors == (0.0,)
    names = [e.name for e in title.entities]
    assert names[0] == "Prince" and title.priors[0] == 1.0  # the known variant keeps its prior
    assert "Prince William of Schaumburg-Lippe" in names and "fuzzy" in title.sources[names.index("Prince William of Schaumburg-Lippe")]
