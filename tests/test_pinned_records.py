"""The shipped examples' records are pinned: a refactor must leave every verdict, witness and mask unchanged."""

from __future__ import annotations

import json
import math

import pytest
from pinned_records import GOLDEN, records

pytestmark = pytest.mark.skipif(not GOLDEN.is_file(), reason="no pinned records")

# float fields are written rounded to 6 decimals from float32 arithmetic; 1e-5 absorbs a last-ulp difference
# between CPUs that could flip that rounding, and nothing larger
ABS_TOL = 1e-5


def _same(a, b, path: str) -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), path
        assert math.isclose(a, b, rel_tol=0, abs_tol=ABS_TOL) or (math.isnan(a) and math.isnan(b)), \
            f"{path}: {a} != {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_example_records_are_unchanged():
    want = json.loads(GOLDEN.read_text())
    got = json.loads(json.dumps(records(), sort_keys=True))
    assert [(r["case"], r["record"]["video"]) for r in got] == [(r["case"], r["record"]["video"]) for r in want]
    for g, w in zip(got, want, strict=True):
        where = f"{w['case']}:{w['record']['video']}"
        _same(g["record"], w["record"], where)
        if w["mask"] is None or g["mask"] is None:
            assert g["mask"] == w["mask"], where
        else:
            assert g["mask"]["shape"] == w["mask"]["shape"], where
            assert g["mask"]["sha256_u8"] == w["mask"]["sha256_u8"], f"{where}: mask differs"
