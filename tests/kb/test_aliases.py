from kb.aliases import EXACT, FIRST_LAST, TERRITORY, derive, surname, territories


def test_derive_personal_regnal_and_peerage_names():
    got = dict(derive("Edward Wood, 1st Earl of Halifax"))
    assert got["Edward Wood, 1st Earl of Halifax"] == EXACT
    assert got["Lord Halifax"] > got["Halifax"] > 0 and got["Edward Wood"] == FIRST_LAST
    faisal = dict(derive("Faisal II of Iraq"))
    assert faisal["Faisal II"] == FIRST_LAST and faisal["Iraq"] == TERRITORY and "II" in faisal
    assert surname("Ludwig van Beethoven") == "van Beethoven"


def test_territories_split_compound_places():
    assert territories("Moritz, Landgrave of Hesse-Kassel") == ["Hesse-Kassel", "Hesse", "Kassel"]
    assert territories("Emma of Waldeck and Pyrmont") == ["Waldeck and Pyrmont", "Waldeck", "Pyrmont"]
    assert territories("Gerald Ford") == []
    assert dict(derive("Emma of Waldeck and Pyrmont"))["Pyrmont"] == TERRITORY
