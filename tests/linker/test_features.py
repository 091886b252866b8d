import unicodedata

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.normalize import fold
from kb.types import Entity
from linker.features import (FEATURES, candidate_features, gender, mention_context, name_features, without_span,
                             year_features, year_spans, years, years_outside)


def test_name_features_exact_and_surname():
    exact, sur, tokens, _, _ = name_features("Stefanie Powers", "Stefanie Powers")
    assert (exact, sur, tokens) == (1.0, 0.0, 1.0)
    exact, sur, tokens, _, _ = name_features("Powers", "Stefanie Powers")
    assert (exact, sur, tokens) == (0.0, 1.0, 1.0)
    exact, sur, tokens, _, _ = name_features("Fred", "Fred (footballer, born 1979)")
    assert exact == 1.0
    exact, sur, tokens, _, _ = name_features("Guzman", "Luis Guzmán")  # diacritics folded
    assert sur == 1.0


def test_year_features():
    desc = "Sex: male. Birth: 1940, Ryan. Occupation: actor."
    assert year_features([1976], desc) == (0.0, 0.0, 0.36, 0.36, 1.0)
    assert year_features([1940], desc)[0] == 1.0
    assert year_features([1930], desc)[1] == 1.0  # before the entity's first year
    assert year_features([2040], desc)[2] == 1.0
    assert year_features([], desc) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert years("born 1979 in 2001, not 123 or 30000") == [1979, 2001]


def test_candidate_features_shape_and_range():
    mention = mention_context("Norris", "Norris in 1976 karate", "in 1976 karate", n_candidates=4)
    norris = Entity("Q2673", "Chuck Norris", "Birth: 1940. Occupation: actor, karate")
    other = Entity("Q1", "Norris (surname)", "")
    f = candidate_features(mention, [norris, other], priors=[0.25, 0.0], prior_ranks=[0, None], dense_sims=[0.3, -0.1],
                           sources=[frozenset({"prior"}), frozenset({"dense"})], in_document=[0.0, 0.0])
    assert f.shape == (2, len(FEATURES)) and f.dtype == np.float32
    assert ((-1.0 <= f) & (f <= 1.0)).all()
    row = dict(zip(FEATURES, f[0]))
    assert row["context_overlap"] == 1.0 and row["surname_match"] == 1.0 and row["year_in_description"] == 0.0
    assert row["from_prior"] == 1.0 and row["from_dense"] == 0.0
    assert row["gender_agreement"] == 0.0  # the description says nothing of gender
    assert dict(zip(FEATURES, f[1]))["prior_rank"] == 0.0 and dict(zip(FEATURES, f[1]))["from_dense"] == 1.0
    assert candidate_features(mention, [], [], [], [], [], []).shape == (0, len(FEATURES))


def test_gender():
    assert gender("Sex: female. Occupation: actor") == 1
    assert gender("Sex: male. Occupation: actor") == -1
    assert gender("Mrs Augusta Baldwin") == 1 and gender("Sir Walter") == -1
    assert gender("Norris in 1976") == 0


def test_name_in_document_and_mention():
    from linker.features import name_in_document, name_in_mention, words

    doc = frozenset(words("Hillary Clinton gave a speech in Ohio. then flew to Texas."))
    assert name_in_document("Hillary Clinton", "Clinton", doc) == 1.0
    assert name_in_document("Bill Clinton", "Clinton", doc) == 0.0
    assert name_in_document("Bill Clinton", "Bill Clinton", doc) == 0.0  # nothing the mention lacks
    assert name_in_document("Ohio", "Clinton", doc) == 0.0  # named in the document, but not this mention's name
    saxony = frozenset(words("Franz Xavier of (b. 1730)"))
    assert name_in_document("Prince Francis Xavier of Saxony", "Saxony", saxony) == 2 / 3  # Franz is Francis
    assert name_in_mention("Gerald Ford", "Gerald Rudolph Ford") == 1.0
    assert name_in_mention("Gerald Ford", "Ford") == 0.5
    assert name_in_mention("Fred (footballer, born 1979)", "Fred") == 1.0


def test_regnal_numerals():
    from linker.features import name_numerals, numeral_features, numerals

    text = "Oscar II was King of Sweden. I met Louis XIV and King Ludwig in MCMXCIX."
    assert numerals(text) == {"II", "XIV"}  # not the pronoun after a full stop, "Ludwig" or a bare word
    assert name_numerals("Eric II, Duke of Brunswick-Lüneburg") == {"II"} and name_numerals("Oscar I of Sweden") == {"I"}
    assert name_numerals("Ivan Ivanov") == frozenset()
    assert numeral_features("Oscar II of Sweden", numerals(text)) == (1.0, 0.0)
    assert numeral_features("Oscar I of Sweden", numerals(text)) == (0.0, 1.0)
    assert numeral_features("Ivan Ivanov", numerals(text)) == (0.0, 0.0)
    assert numeral_features("Oscar I of Sweden", frozenset()) == (0.0, 0.0)


def test_name_near_mention():
    from linker.features import near_words

    text = "Karl Friedrich von Gaertner was a German botanist, and the son of the botanist Joseph Gaertner."
    start = text.index("Gaertner")
    near = near_words(text, start, start + len("Gaertner"))
    assert {"charles", "frederick", "was"} <= near and "joseph" not in near  # Karl, Friedrich: canonical forms
    mention = mention_context("Gaertner", text, text, 2, near=near)
    karl = Entity("Q1", "Karl Friedrich von Gaertner", "Occupation: botanist.")
    joseph = Entity("Q2", "Joseph Gaertner", "Occupation: botanist.")
    f = candidate_features(mention, [karl, joseph], [0.5, 0.5], [0, 1], [0.0, 0.0],
                           [frozenset({"prior"})] * 2, [1.0, 1.0])
    near_col = FEATURES.index("name_near_mention")
    assert f[0, near_col] == 1.0 and f[1, near_col] == 0.0


def test_enclosing_missing():
    """A span inside a longer written name ("Diego" in "San Diego") is evidence against
    candidates whose name lacks the rest of it; titles do not count ("King George V")."""
    from linker.features import enclosing_tokens

    assert enclosing_tokens("San Diego", "Diego") == {"san"}
    assert enclosing_tokens("King George V", "George") == frozenset()
    assert enclosing_tokens(None, "Diego") == frozenset()
    col = FEATURES.index("enclosing_missing")
    mention = mention_context("Gaertner", "", "", 2, enclosing="Karl Friedrich von Gaertner")
    karl = Entity("Q1", "Karl Friedrich von Gaertner", "")
    joseph = Entity("Q2", "Joseph Gaertner", "")
    f = candidate_features(mention, [karl, joseph], [0.5, 0.5], [0, 1], [0.0, 0.0], [frozenset({"prior"})] * 2, [0.0, 0.0])
    assert f[0, col] == 0.0 and f[1, col] == 1.0


def test_given_name_forms_match_across_languages():
    """"Ludwig I … Grand Duke of Baden" names Louis I, not Frederick I; "James Douglas Morrison"
    is Jim Morrison: name-token features read given names in their canonical form."""
    from linker.features import name_in_document, words

    assert words("Ludwig I succeeded as Grand Duke of Baden")[0] == "louis"
    assert words("Ralf Moeller") == words("Ralf Möller") == ["ralf", "moller"]  # the ASCII spelling of an umlaut
    doc = frozenset(words("Ludwig I succeeded as Grand Duke of Baden"))
    assert name_in_document("Louis I, Grand Duke of Baden", "Baden", doc) == 1.0
    assert name_in_document("Frederick I, Grand Duke of Baden", "Baden", doc) < 1.0
    col = FEATURES.index("enclosing_missing")
    mention = mention_context("Morrison", "", "", 2, enclosing="James Douglas Morrison")
    jim, van = Entity("Q1", "Jim Morrison", ""), Entity("Q2", "Van Morrison", "")
    f = candidate_features(mention, [jim, van], [0.5, 0.5], [0, 1], [0.0, 0.0], [frozenset({"prior"})] * 2, [0.0, 0.0])
    assert f[0, col] == 0.5 and f[1, col] == 1.0


def test_enclosing_first_and_numeral_after():
    """Of namesakes the text writes, the one it names first is meant ("Alfred Josef Ferdinand
    Jodl" is Alfred Jodl); a regnal number right after the span ("Philip I, called the
    Amorous") rules out entities without it."""
    from linker.features import enclosing_first, numeral_after

    assert enclosing_first("Alfred Josef Ferdinand Jodl", "Jodl") == "alfred"
    assert enclosing_first("Julius Heinrich Dorpmueller", "Julius") is None  # the mention is the given name
    assert enclosing_first("King George V", "V") == "george" and enclosing_first(None, "Jodl") is None
    first = FEATURES.index("enclosing_first")
    mention = mention_context("Jodl", "", "", 2, enclosing="Alfred Josef Ferdinand Jodl")
    alfred, ferdinand = Entity("Q1", "Alfred Jodl", ""), Entity("Q2", "Ferdinand Jodl", "")
    f = candidate_features(mention, [alfred, ferdinand], [0.5, 0.5], [0, 1], [0.0, 0.0], [frozenset({"prior"})] * 2, [0.0, 0.0])
    assert f[0, first] == 1.0 and f[1, first] == -1.0
    text = "Philip I, called the Amorous, was King of the Franks."
    assert numeral_after(text, len("Philip")) == "I" and numeral_after("George on the stamp", 6) is None
    match, conflict = FEATURES.index("numeral_match"), FEATURES.index("numeral_conflict")
    mention = mention_context("Philip", "", "", 2, numerals=frozenset({"I"}), numeral_after="I")
    king, plain = Entity("Q3", "Philip I of France", ""), Entity("Q4", "Philip", "")
    f = candidate_features(mention, [king, plain], [0.5, 0.5], [0, 1], [0.0, 0.0], [frozenset({"prior"})] * 2, [0.0, 0.0])
    assert (f[0, match], f[0, conflict], f[1, match], f[1, conflict]) == (1.0, 0.0, 0.0, 1.0)
    # the number of the name written around the span counts as written right after it
    around = "William I, Duke of Bavaria-Straubing"
    assert mention_context("Bavaria", "", "", 2, enclosing=around).numeral_after == "I"
    assert mention_context("I", "", "", 2, enclosing=around).numeral_after is None  # the span is the number
    mention = mention_context("Bavaria", "", "", 2, numerals=frozenset({"I", "IV"}), enclosing=around)
    first, fourth = Entity("Q5", "William I, Duke of Bavaria", ""), Entity("Q6", "William IV, Duke of Bavaria", "")
    f = candidate_features(mention, [first, fourth], [0.5, 0.5], [0, 1], [0.0, 0.0], [frozenset({"prior"})] * 2, [0.0, 0.0])
    assert (f[0, match], f[0, conflict], f[1, match], f[1, conflict]) == (1.0, 0.0, 0.0, 1.0)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="19 20x٣²5", max_size=24), st.data())
def test_years_outside_reads_the_document_once(text, data):
    # the years of the text without a span, from the document's year matches; edges between
    # two digits (a cut that makes or breaks a year) take the long way
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    assert years_outside(text, year_spans(text), start, end) == tuple(years(without_span(text, start, end)))


def test_years_outside_drops_the_years_inside_the_span():
    text = "Born in 1901 in Ulm, he left in 1933; 1955."
    start = text.index("1933")
    assert years_outside(text, year_spans(text), start, start + 4) == (1901, 1955)
    # cuts between digits: "1|1999" makes a year, "1999|5" too, "19|99" breaks one
    for text, start, end, want in (("11999", 1, 1, (1999,)), ("19995", 4, 5, (1999,)), ("a 1999 b", 4, 4, ())):
        assert years_outside(text, year_spans(text), start, end) == want == tuple(years(without_span(text, start, end)))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_fold_drops_every_combining_mark(text):
    decomposed = unicodedata.normalize("NFKD", text)
    assert fold(text) == "".join(c for c in decomposed if not unicodedata.combining(c))


def test_similarity_gaps_are_against_the_mention_s_best_candidate():
    mention = mention_context("Mercury", "", "", 2)
    planet, god = Entity("Q1", "Mercury (planet)", ""), Entity("Q2", "Mercury (mythology)", "")
    f = candidate_features(mention, [planet, god], [0.5, 0.5], [0, 1], [0.6, 0.2], [frozenset({"prior"})] * 2,
                           [0.0, 0.0], surface_sims=[-0.5, 0.7])
    dense, surface = FEATURES.index("dense_gap"), FEATURES.index("surface_gap")
    assert (f[0, dense], f[0, surface]) == (0.0, -1.0)  # 1.2 under the best, clipped
    assert np.isclose(f[1, dense], -0.4) and f[1, surface] == 0.0


def test_suffix_rewrite_fires_for_the_entity_a_learned_rule_names():
    from kb.morphology import parse_rule, rewrites

    derived = rewrites("astronomical", [parse_rule("ical>y")])
    mention = mention_context("astronomical", "", "", 2, derived=derived)
    field, history = Entity("Q1", "Astronomy", ""), Entity("Q2", "History of astronomy", "")
    f = candidate_features(mention, [field, history], [0.3, 0.6], [1, 0], [0.0, 0.0], [frozenset({"prior"})] * 2,
                           [0.0, 0.0])
    column = FEATURES.index("suffix_rewrite")
    assert (f[0, column], f[1, column]) == (1.0, 0.0)
    assert candidate_features(mention_context("astronomical", "", "", 2), [field], [0.3], [0], [0.0],
                              [frozenset({"prior"})], [0.0])[0, column] == 0.0  # no rules, no rewrite
