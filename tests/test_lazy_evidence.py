"""Large evidence files are read back lazily (attest.store.read_evidence): the payload's items
stay in the file's text until a rule reads them. A rule must not be able to tell: every way of
reading gives what the eager read gives, and whole scans reach the same verdicts."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from attest.model import Evidence, EvidenceState
from attest.store import BundleWriter, LazyDict, LazyList, read_evidence

NOW = datetime(2026, 11, 22, 2, 0, 5, tzinfo=timezone.utc)

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
payloads = st.lists(values, max_size=8) | st.dictionaries(st.text(max_size=8), values, max_size=8)


def written(tmp_path: Path, payload: Any, n: int = 0) -> Path:
    writer = BundleWriter(tmp_path / f"out{n}", NOW)
    ev = Evidence(name="okta.users", scope="okta:acme", state=EvidenceState.PARTIAL,
                  payload=payload, detail="d \"quoted\" ü", request={"pages": 2},
                  unknown={"a@x": "why"})
    return writer.tmp / writer.write_evidence(ev)


@settings(max_examples=150, deadline=None)
@given(payload=payloads)
def test_a_lazy_payload_reads_as_the_eager_one_every_way(tmp_path_factory, payload) -> None:
    path = written(tmp_path_factory.mktemp("lazy"), payload)
    eager, lazy = read_evidence(path, lazy_bytes=1 << 40), read_evidence(path, lazy_bytes=0)
    assert type(lazy.payload) is (LazyList if isinstance(payload, list) else LazyDict)
    assert (lazy.name, lazy.scope, lazy.state, lazy.detail, lazy.request, lazy.unknown) == (
        eager.name, eager.scope, eager.state, eager.detail, eager.request, eager.unknown)
    p, e = lazy.payload, eager.payload
    assert p == e and e == p and not (p != e) and len(p) == len(e) and bool(p) == bool(e)
    assert json.dumps(list(p) if isinstance(e, list) else dict(p)) == json.dumps(e)
    if isinstance(e, list):
        assert [x for x in p] == e and list(reversed(p)) == e[::-1] and p[:3] == e[:3]
        assert p.copy() == e and p + [1] == e + [1] and [1] + p == [1] + e
        for i, item in enumerate(e):
            assert p[i] == item and p[-1 - i] == e[-1 - i] and item in p
            assert p.index(item) == e.index(item) and p.count(item) == e.count(item)
        with pytest.raises(TypeError):
            p.append(1)
        with pytest.raises(TypeError):
            p[0:0] = [1]
    else:
        assert list(p) == list(e) and dict(p) == e and dict(p.items()) == e
        assert list(p.values()) == list(e.values()) and p.copy() == e and {**p} == e
        for key, value in e.items():
            assert key in p and p[key] == value and p.get(key) == value
        assert p.get("\x00absent", 7) == 7 and "\x00absent" not in p
        with pytest.raises(KeyError):
            p["\x00absent"]
        with pytest.raises(TypeError):
            p["new"] = 1
        with pytest.raises(TypeError):
            p.setdefault("new", 1)


def test_only_a_large_file_is_read_lazily_and_scalars_never(tmp_path: Path) -> None:
    small = written(tmp_path, [{"id": 1}], 1)
    assert type(read_evidence(small).payload) is list
    big = written(tmp_path, [{"id": i, "login": f"user{i}@acme.example"} for i in range(30_000)], 2)
    assert big.stat().st_size > (1 << 20)
    users = read_evidence(big).payload
    assert type(users) is LazyList and users[29_999] == {"id": 29_999, "login": "user29999@acme.example"}
    assert read_evidence(written(tmp_path, "text", 3), lazy_bytes=0).payload == "text"
    assert read_evidence(written(tmp_path, None, 4), lazy_bytes=0).payload is None


def test_a_scan_judged_from_lazy_records_reaches_the_same_verdicts(demo_scan, tmp_path: Path,
                                                                   monkeypatch) -> None:
    """The demo (every source) judged with every record read back lazily: the same results."""
    import attest.store
    eager = demo_scan(out=tmp_path / "eager").results
    monkeypatch.setattr(attest.store, "LAZY_BYTES", 0)
    lazy = demo_scan(out=tmp_path / "lazy").results
    def verdicts(results: Any) -> list[Any]:
        return [(c.id, c.status, [(f.resource, f.status, f.detail) for f in c.findings])
                for c in results.controls]
    assert verdicts(lazy) == verdicts(eager)
    assert sum(len(c.findings) for c in lazy.controls) > 100
