import json
from pathlib import Path

import numpy as np
import pytest

from codectk.io.codes import read_codes, read_codes_meta, write_codes


def test_roundtrip(tmp_path: Path):
    rng = np.random.default_rng(0)
    codes = {"b": rng.integers(0, 256, (4, 9)), "a": rng.integers(0, 256, (4, 3))}
    write_codes(tmp_path / "codes", codes, 256, 50.0, 16000)
    back = read_codes(tmp_path / "codes.scp")
    assert list(back) == ["a", "b"]
    for k in codes:
        np.testing.assert_array_equal(back[k], codes[k])
    assert read_codes_meta(tmp_path / "codes.scp")["n_codebooks"] == 4
    assert str(tmp_path / "codes.ark") in (tmp_path / "codes.scp").read_text()


def test_rejects_bad_input(tmp_path: Path):
    with pytest.raises(ValueError, match="same number of codebooks"):
        write_codes(
            tmp_path / "c", {"a": np.zeros((2, 3), int), "b": np.zeros((3, 3), int)}, 8, 50.0, 16000
        )
    with pytest.raises(ValueError, match="outside"):
        write_codes(tmp_path / "c", {"a": np.full((2, 3), 8)}, 8, 50.0, 16000)
    write_codes(tmp_path / "ok", {"a": np.zeros((2, 3), int)}, 8, 50.0, 16000)
    meta = json.loads((tmp_path / "ok.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "ok.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="version 99 not supported"):
        read_codes(tmp_path / "ok.scp")
