"""Suffix rules learned from a KB's links (`kb.morphology`) in training and candidate lookup."""
from __future__ import annotations

from typer.testing import CliRunner

import cli
from kb.home import kb_path
from kb.store import KnowledgeBase
from linker.candidates import surface_forms
from linker.training.train import suffix_rules_of

runner = CliRunner()


def _page(title: str, text: str) -> str:
    return f"<page><title>{title}</title><ns>0</ns><id>1</id><revision><text>{text}</text></revision></page>\n"


def test_training_learns_the_endings_of_a_dump_s_links(tmp_path):
    dump = tmp_path / "tiny.xml"
    dump.write_text(
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">\n'
        + _page("Bulgaria", "A country. The [[Siberia|Siberian]] winter.")
        + _page("Siberia", "A region. The [[Bulgaria|Bulgarian]] coast, the [[Planet|planets]], the [[Moon|moons]].")
        + _page("Planet", "A body. [[Angola|Angolan]] skies.")
        + _page("Moon", "A satellite.")
        + _page("Angola", "A country.")
        + "</mediawiki>\n"
    )
    home = tmp_path / "home"
    res = runner.invoke(cli.app, ["kb", "build", "--dump", str(dump), "--kb", "tiny", "--home", str(home), "--no-progress"])
    assert res.exit_code == 0, res.output
    kb = KnowledgeBase(kb_path(home, "tiny"))
    assert suffix_rules_of([kb, kb]) == ("n>", "s>")  # each KB read once: "s>" has two pairs, not four


def test_an_unknown_surface_is_looked_up_by_its_rewrites():
    groups = surface_forms("Angolan", [("n", "")])
    assert ["angola"] in groups and groups[0] == ["angolan"]
    assert ["angola"] not in surface_forms("Angolan")
