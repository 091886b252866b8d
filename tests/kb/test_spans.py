"""Capitalised spans: what the spotter may propose and what link probability counts."""
from hypothesis import given, strategies as st

from kb.spans import all_spans, sentence_initial, surfaces


def _surfaces(text):
    return [s.surface for s in all_spans(text)]


def test_runs_stop_at_punctuation_and_sentence_ends():
    text = "George Cleveland, Jean Parker. Then Paris."
    got = _surfaces(text)
    assert "George Cleveland" in got and "Jean Parker" in got
    assert not any("," in s or "Parker. Then" in s for s in got)


def test_spans_longest_first_with_joiners_initials_and_possessives():
    text = "Portrait of Myron V. George and Ludwig van Beethoven's piano"
    got = _surfaces(text)
    assert got.index("Myron V. George") < got.index("Myron")
    assert "Ludwig van Beethoven" in got and "Beethoven" in got
    assert not any(s.endswith("'s") for s in got)
    assert "van Beethoven" not in got  # spans start on a capitalised word


def test_prefix_and_suffix_flags():
    spans = {s.surface: s for s in all_spans("He moved to San Diego.")}
    assert not spans["San Diego"].prefix and not spans["San Diego"].suffix
    assert spans["San"].prefix and not spans["San"].suffix
    assert spans["Diego"].suffix and not spans["Diego"].prefix


def test_sentence_initial():
    text = "Norris in 1976. Then (Wilde) came"
    assert sentence_initial(text, 0)
    assert sentence_initial(text, text.index("Then"))
    assert sentence_initial(text, text.index("Wilde"))
    assert not sentence_initial(text, text.index("in"))


@given(st.text(alphabet=st.sampled_from(list("Aa Bb.,'’É é1 \tofde")), max_size=60))
def test_spans_are_exact_slices_and_surfaces_agree(text):
    spans = list(all_spans(text))
    for s in spans:
        assert text[s.start:s.end] == s.surface and s.surface[0].isupper()
        assert 1 <= s.n_words <= 6
    assert sorted(surfaces(text)) == sorted(s.surface for s in spans)


def test_joiners_separate_names_for_suffix_flags():
    spans = {s.surface: s for s in all_spans("Stanley and Ethel Bruce met Sir George Grey")}
    assert not spans["Ethel Bruce"].suffix  # "and" separates two names
    assert spans["Bruce"].suffix and spans["Bruce"].run_start == spans["Ethel Bruce"].start
    assert spans["George Grey"].suffix and spans["George Grey"].run_start == spans["Sir George Grey"].start
