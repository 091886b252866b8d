import pytest

from kb.morphology import learn_suffix_rules, parse_rule, rewrites, suffix_rule


@pytest.mark.parametrize("mention, name, rule", [
    ("astronomical", "astronomy", "ical>y"),
    ("bulgarian", "bulgaria", "n>"),
    ("galaxies", "galaxy", "ies>y"),
    ("black holes", "black hole", "s>"),
    ("roman", "rome", "an>e"),
])
def test_a_rule_is_the_two_endings_after_the_shared_stem(mention, name, rule):
    assert suffix_rule(mention, name) == rule


@pytest.mark.parametrize("mention, name", [
    ("galaxy", "galaxy"),  # equal
    ("red dwarfs", "white dwarf"),  # other words differ
    ("uk", "united kingdom"),  # not one word's ending
    ("ox", "oxen"),  # stem shorter than three
    ("cat", "catastrophically"),  # ending longer than six
])
def test_pairs_that_are_not_an_ending_give_no_rule(mention, name):
    assert suffix_rule(mention, name) is None


def test_rules_need_two_distinct_pairs_and_come_most_supported_first():
    pairs = [("bulgarian", "bulgaria"), ("siberian", "siberia"), ("siberian", "siberia"),
             ("galaxies", "galaxy"), ("planets", "planet"), ("stars", "star"), ("moons", "moon"),
             ("astronomical", "astronomy")]
    assert learn_suffix_rules(pairs) == ("s>", "n>")
    assert learn_suffix_rules(pairs, min_support=1) == ("s>", "n>", "ical>y", "ies>y")


def test_rewrites_keep_a_stem_and_leave_the_other_words():
    rules = [parse_rule(r) for r in ("ical>y", "n>", "s>", ">s")]
    assert rewrites("astronomical", rules) == {"astronomy", "astronomicals"}
    assert rewrites("ancient bulgarian", rules) == {"ancient bulgaria", "ancient bulgarians"}
    assert rewrites("gas", [parse_rule("s>")]) == frozenset()  # "ga" is no stem


def test_a_rule_without_its_arrow_is_an_error():
    with pytest.raises(ValueError, match="'icaly'"):
        parse_rule("icaly")
