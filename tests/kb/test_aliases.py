from kb.aliases import EXACT, FIRST_LAST, TERRITORY, derive, surname, territories


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
