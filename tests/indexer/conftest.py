"""Fixtures for indexer tests (helpers live in idx_helpers.py)."""
import pytest
from idx_helpers import make_kb


@pytest.fixture
def small_kb(tmp_path):
    return make_kb(tmp_path / "kb" / "kb.sqlite")
