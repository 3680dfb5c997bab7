"""Property-based fuzzing of the readers: they return or raise codectk's own error."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codectk.config import apply_overrides, build_train_config, load_train_config
from codectk.errors import CodectkError
from codectk.io.datadir import read_scp, validate_data_dir

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
line = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@SETTINGS
@given(st.lists(line, max_size=8), st.booleans())
def test_read_scp_never_crashes(lines, crlf):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "wav.scp"
        p.write_bytes(("\r\n" if crlf else "\n").join(lines).encode("utf-8"))
        try:
            table = read_scp(p)
        except CodectkError as exc:
            assert str(p) in str(exc)
            return
        for key, value in table.items():
            assert key and value and not any(c.isspace() for c in key)


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["wav.scp", "utt2spk", "spk2utt", "utt2num_samples", "text"]),
        st.lists(line, max_size=5),
    )
)
def test_validate_data_dir_never_crashes(files):
    with tempfile.TemporaryDirectory() as d:
        for name, lines in files.items():
            (Path(d) / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        problems = validate_data_dir(d)
        assert isinstance(problems, list)
        if "wav.scp" not in files or "utt2spk" not in files:
            assert problems


yaml_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)
)
yaml_value = st.recursive(
    yaml_scalar,
    lambda c: st.one_of(
        st.lists(c, max_size=3), st.dictionaries(st.text(max_size=8), c, max_size=3)
    ),
    max_leaves=8,
)


@SETTINGS
@given(st.dictionaries(st.text(max_size=20), yaml_value, max_size=6))
def test_train_config_never_crashes(data):
    try:
        build_train_config(data)
    except CodectkError:
        pass


@SETTINGS
@given(st.binary(max_size=200))
def test_config_file_never_crashes(blob):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.yaml"
        p.write_bytes(blob)
        try:
            load_train_config(p)
        except CodectkError as exc:
            assert str(p) in str(exc)


@SETTINGS
@given(st.lists(st.text(max_size=12), max_size=6))
def test_overrides_never_crash(args):
    try:
        apply_overrides({"codec": "soundstream"}, args)
    except CodectkError:
        pass


@SETTINGS
@given(st.binary(max_size=120))
def test_read_scp_bytes_never_crash(blob):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "wav.scp"
        p.write_bytes(blob)
        try:
            read_scp(p)
        except CodectkError as exc:
            assert str(p) in str(exc)
