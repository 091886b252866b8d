"""The CLI's document reader on arbitrary bytes: documents or one `InputError`, nothing else."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.errors import InputError
from linker.document import read_documents

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                     max_leaves=8)
_doc = st.fixed_dictionaries({"text": st.text(max_size=40) | _json},
                             optional={"mentions": st.lists(st.fixed_dictionaries(
                                 {"start": st.integers(-3, 50) | _json, "end": st.integers(-3, 50) | _json}),
                                 max_size=3) | _json, "images": _json, "id": _json})
_bodies = st.one_of(st.binary(max_size=80), st.one_of(_doc, _json).map(lambda o: json.dumps(o).encode()),
                    st.lists(_doc, min_size=1, max_size=3).map(lambda ds: b"\n".join(json.dumps(d).encode() for d in ds)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies, suffix=st.sampled_from([".json", ".jsonl"]))
def test_reader_yields_documents_or_one_input_error(tmp_path, body, suffix):
    path = tmp_path / f"in{suffix}"
    path.write_bytes(body)
    try:
        docs = list(read_documents(path))
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(isinstance(d.text, str) for d in docs)
