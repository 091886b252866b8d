import json

import pytest

from kb.aliases import EXACT, FIRST_LAST, NAME_FORMS, TERRITORY, derive, is_person, name_forms, surname, territories
from kb.build import build_kb
from kb.errors import KBError
from kb.store import KnowledgeBase
from tests.kb.test_wikidata import dump_lines, item, write


def test_derive_personal_regnal_and_peerage_names():
    got = dict(derive("Edward Wood, 1st Earl of Halifax"))
    assert got["Edward Wood, 1st Earl of Halifax"] == EXACT
    assert got["Lord Halifax"] > got["Halifax"] > 0 and got["Edward Wood"] == FIRST_LAST
    faisal = dict(derive("Faisal II of Iraq"))
    assert faisal["Faisal II"] == FIRST_LAST and faisal["Iraq"] == TERRITORY and "II" in faisal
    assert surname("Ludwig van Beethoven") == "van Beethoven"
    kingsmill = dict(derive("Denise Kingsmill, Baroness Kingsmill"))  # women's ranks are peerages too
    assert kingsmill["Baroness Kingsmill"] == kingsmill["Lady Kingsmill"] > kingsmill["Kingsmill"] > 0
    assert kingsmill["Denise Kingsmill"] == FIRST_LAST and "Lord Kingsmill" not in kingsmill


def test_territories_split_compound_places():
    assert territories("Moritz, Landgrave of Hesse-Kassel") == ["Hesse-Kassel", "Hesse", "Kassel"]
    assert territories("Emma of Waldeck and Pyrmont") == ["Waldeck and Pyrmont", "Waldeck", "Pyrmont"]
    assert territories("Gerald Ford") == []
    assert territories("Margaret of Bavaria, Marchioness of Mantua") == ["Bavaria", "Mantua"]  # each part


def test_noble_titles_give_the_place_without_the_particle():
    """How captions cut a noble name: the place of "Count von X" / "Count Palatine of X"."""
    assert dict(derive("Hans, Count von Bülow"))["Bülow"] > 0
    assert "von Bülow" not in dict(derive("Hans, Count von Bülow"))
    assert dict(derive("Wolfgang William, Count Palatine of Neuburg"))["Neuburg"] == TERRITORY
    assert dict(derive("Emma of Waldeck and Pyrmont"))["Pyrmont"] == TERRITORY


def test_given_name_forms_share_one_canonical_form():
    from kb.aliases import given_name

    assert given_name("wilhelm") == given_name("billy") == given_name("william") == "william"
    assert given_name("ludwig") == "louis" and given_name("jim") == "james"
    assert given_name("ann") == "anne"  # "Ann Anderson may refer to" is about Anne Anderson
    assert given_name("yevgeny") == given_name("evgeny") == given_name("eugen") == "eugene"
    assert given_name("carl") == "carl" and given_name("jean") == "jean"  # distinct English names stay apart
    assert given_name("hesse") == "hesse"
    assert given_name("will") == "will" and given_name("don") == "don"  # words, not only names


def test_derive_reads_its_tables_from_the_data_file():
    """The tables of kb/data/name_forms.json give the aliases the rules gave when they were code."""
    assert derive("Ludwig van Beethoven") == [
        ("Ludwig van Beethoven", 1.0), ("van Beethoven", 0.3), ("Beethoven", 0.3), ("Ludwig Beethoven", 0.6),
        ("Ludwig", 0.1), ("Ludwig van", 0.3), ("van", 0.1)]
    assert derive("Grand Duchess Olga Nikolaevna") == [
        ("Grand Duchess Olga Nikolaevna", 1.0), ("Olga Nikolaevna", 0.6), ("Grand Duchess Olga", 0.6),
        ("Nikolaevna", 0.3), ("Olga", 0.1)]
    assert derive("Hans, Count von Bülow") == [
        ("Hans, Count von Bülow", 1.0), ("Bülow", 0.3), ("Lord Bülow", 0.6), ("Count of Bülow", 0.6),
        ("Count Bülow", 0.6), ("Hans", 0.6)]
    assert derive("John Smith QC") == [("John Smith QC", 1.0), ("Smith", 0.3), ("John Smith", 0.6), ("John", 0.1)]
    assert dict(derive("Martin Luther King Jr."))["King"] == 0.3  # the suffix is no surname


def test_derive_without_person_rules_keeps_the_name_level_aliases():
    assert derive("São Paulo (state)", person=False) == [("São Paulo (state)", 1.0), ("São Paulo", 1.0),
                                                        ("Sao Paulo", 1.0)]
    assert derive("Battle of Hastings", person=False) == [("Battle of Hastings", 1.0)]
    assert dict(derive("Battle of Hastings"))["Hastings"] == TERRITORY  # the person rules' reading


def test_is_person_reads_wikidata_ids_and_labels():
    assert is_person(["Q5"]) is True and is_person(("Q215380", "q5")) is True
    assert is_person(["Human"]) is True and is_person(["person"]) is True
    assert is_person(["Q515"]) is False and is_person(["city", "Q1549591"]) is False
    assert is_person([]) is None and is_person(()) is None


def _kb(tmp_path, entities: list[dict]) -> KnowledgeBase:
    src = tmp_path / "ents.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in entities), encoding="utf-8")
    build_kb(tmp_path / "kb.sqlite", entities=src, progress=False)
    return KnowledgeBase(tmp_path / "kb.sqlite")


def _found(kb: KnowledgeBase, surface: str) -> list[str]:
    return [c.entity for c in kb.lookup(surface)]


def test_entity_list_types_decide_the_person_rules(tmp_path):
    kb = _kb(tmp_path, [
        {"qid": "Q60", "name": "New York City (city)", "types": ["Q515"]},
        {"qid": "Q31234", "name": "Battle of Hastings", "types": ["Q178561"]},
        {"qid": "Q255", "name": "Ludwig van Beethoven", "types": ["Q5"]},
        {"qid": "Q1000070", "name": "Myron V. George"},
    ])
    assert _found(kb, "New York City") == ["Q60"] and _found(kb, "Battle of Hastings") == ["Q31234"]
    for surface in ("City", "York", "New York", "York City", "New City", "Hastings", "Battle"):
        assert _found(kb, surface) == [], surface
    assert _found(kb, "Beethoven") == ["Q255"] and _found(kb, "Ludwig") == ["Q255"]  # a person
    assert _found(kb, "George") == ["Q1000070"] and _found(kb, "Myron George") == ["Q1000070"]  # no types


def test_wikidata_types_decide_the_person_rules(tmp_path):
    def instance_of(qid: str) -> dict:
        value = {"entity-type": "item", "id": qid}
        return {"P31": [{"mainsnak": {"snaktype": "value", "property": "P31",
                                      "datavalue": {"value": value, "type": "wikibase-entityid"}},
                         "type": "statement", "rank": "normal"}]}

    dump = write(tmp_path, dump_lines(item("Q60", "New York City", claims=instance_of("Q515")),
                                      item("Q255", "Ludwig van Beethoven", claims=instance_of("Q5")),
                                      item("Q7", "Myron V. George")))
    build_kb(tmp_path / "kb.sqlite", wikidata=dump, workers=1, progress=False)
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    assert kb.get("Q60").types == ("Q515",) and kb.get("Q255").types == ("Q5",)
    assert _found(kb, "New York City") == ["Q60"] and _found(kb, "York") == [] and _found(kb, "New York") == []
    assert _found(kb, "Beethoven") == ["Q255"] and _found(kb, "George") == ["Q7"]


def test_a_name_forms_file_without_a_table_fails_naming_the_file(tmp_path):
    good = json.loads(NAME_FORMS.read_text(encoding="utf-8"))
    assert name_forms(NAME_FORMS)["person_types"] == ["Q5", "human", "person"]
    del good["honorifics"]
    bad = tmp_path / "name_forms.json"
    bad.write_text(json.dumps(good), encoding="utf-8")
    with pytest.raises(KBError, match=r"name_forms\.json.*'honorifics' is missing"):
        name_forms(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(KBError, match="broken.json"):
        name_forms(broken)
