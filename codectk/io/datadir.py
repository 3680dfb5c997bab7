"""Kaldi data directories: read, write, validate, fix, subset and combine.

A data directory holds ``LC_ALL=C``-sorted text files keyed by utterance id:

* ``wav.scp``: ``<utt> <path>`` or ``<utt> <command> |`` (required)
* ``utt2spk``: ``<utt> <spk>`` (required); speaker ids prefix utterance ids
* ``spk2utt``: ``<spk> <utt1> <utt2> ...`` (derived from utt2spk)
* ``text``, ``utt2num_samples``, ``spk2gender``, ``segments`` (optional)

Every reader error names the file and the line (``data/train/wav.scp:12``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from codectk.errors import CodectkError
from codectk.io.fileio import atomic_dir, atomic_write

log = logging.getLogger(__name__)

UTT_KEYED = ("wav.scp", "utt2spk", "text", "utt2num_samples", "segments", "utt2dur")


class DataDirError(CodectkError, ValueError):
    """A malformed data directory file; the message names the file and line."""


def read_scp(path: str | os.PathLike, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a Kaldi ``<key> <value>`` table (value = rest of the line).

    Args:
        path: the file.
        allow_empty_value (bool): accept lines holding only a key (``text`` may).

    Returns:
        dict: key -> value, in file order.

    Raises:
        DataDirError: missing file, a line without a value, or a duplicated key, naming
            ``path:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: no such file")
    table: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        for lineno, line in enumerate(f, 1):
            if any("\udc80" <= c <= "\udcff" for c in line):  # undecodable bytes
                raise DataDirError(f"{path}:{lineno}: not UTF-8 text: {line.strip()!r}")
            line = line.rstrip("\r\n")
            if not line.strip():
                raise DataDirError(f"{path}:{lineno}: empty line")
            parts = line.strip().split(maxsplit=1)
            key = parts[0]
            value = parts[1] if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{lineno}: no value after key {key!r}: {line!r}")
            if key in table:
                raise DataDirError(f"{path}:{lineno}: duplicated key {key!r}")
            table[key] = value
    return table


def write_scp(path: str | os.PathLike, table: Mapping[str, object]) -> None:
    """Write a ``<key> <value>`` table atomically, sorted as ``LC_ALL=C sort`` would."""
    with atomic_write(path) as f:
        for key in sorted(table, key=_c_order):
            f.write(f"{key} {table[key]}\n")


def _c_order(key: str) -> bytes:
    return key.encode("utf-8")


def is_c_sorted(keys: Iterable[str]) -> bool:
    """True if ``keys`` are in ``LC_ALL=C`` order with no repeats."""
    keys = [_c_order(k) for k in keys]
    return all(a < b for a, b in zip(keys, keys[1:]))


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert ``utt2spk``: speaker -> sorted list of its utterances."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=_c_order):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return spk2utt


def validate_data_dir(data_dir: str | os.PathLike, no_text: bool = True) -> list[str]:
    """Check a data directory; return a list of problems (empty when valid).

    Checks: required files exist and parse; every file is ``LC_ALL=C`` sorted; the same
    utterance ids in every utterance-keyed file; spk2utt agrees with utt2spk; speaker
    ids prefix utterance ids; ``utt2num_samples`` holds positive integers.

    Args:
        data_dir: the directory.
        no_text (bool): do not require a ``text`` file.
    """
    d = Path(data_dir)
    problems: list[str] = []
    if not d.is_dir():
        return [f"{d}: not a directory"]
    required = ["wav.scp", "utt2spk"] + ([] if no_text else ["text"])
    tables: dict[str, dict[str, str]] = {}
    for name in (*UTT_KEYED, "spk2utt"):
        p = d / name
        if not p.exists():
            if name in required:
                problems.append(f"{p}: required file missing")
            continue
        try:
            table = read_scp(p, allow_empty_value=(name == "text"))
        except DataDirError as exc:
            problems.append(str(exc))
            continue
        if not table:
            problems.append(f"{p}: empty file")
        keys = list(table)
        for i, (a, b) in enumerate(zip(keys, keys[1:]), 2):
            if _c_order(a) >= _c_order(b):
                problems.append(f"{p}:{i}: not sorted (LC_ALL=C): {a!r} before {b!r}")
                break
        tables[name] = table
    if "wav.scp" in tables:
        ref = set(tables["wav.scp"])
        for name, table in tables.items():
            if name in UTT_KEYED and name != "wav.scp" and set(table) != ref:
                extra = sorted(set(table) - ref)[:3]
                missing = sorted(ref - set(table))[:3]
                problems.append(
                    f"{d / name}: utterance ids differ from wav.scp "
                    f"(only here: {extra}, missing here: {missing}); run utils/fix_data_dir.sh"
                )
    if "utt2spk" in tables:
        for utt, spk in tables["utt2spk"].items():
            if len(spk.split()) != 1:
                problems.append(f"{d / 'utt2spk'}: utterance {utt!r} has speaker field {spk!r}")
            elif not utt.startswith(spk):
                problems.append(
                    f"{d / 'utt2spk'}: speaker id {spk!r} does not prefix utterance id {utt!r}"
                )
        if "spk2utt" in tables:
            expect = {s: " ".join(u) for s, u in utt2spk_to_spk2utt(tables["utt2spk"]).items()}
            if expect != tables["spk2utt"]:
                problems.append(
                    f"{d / 'spk2utt'}: disagrees with utt2spk; run utils/fix_data_dir.sh"
                )
        else:
            problems.append(f"{d / 'spk2utt'}: required file missing")
    if "utt2num_samples" in tables:
        for utt, n in tables["utt2num_samples"].items():
            if not n.isdigit() or int(n) <= 0:
                problems.append(f"{d / 'utt2num_samples'}: {utt!r} has bad length {n!r}")
                break
    return problems


def fix_data_dir(data_dir: str | os.PathLike) -> dict[str, int]:
    """Sort every file, keep only utterances present in all utterance-keyed files, and
    regenerate ``spk2utt``. The removed ids are written to ``<data_dir>/.backup/dropped``.

    Returns:
        dict: ``{"kept": n, "dropped": m}``.

    Raises:
        DataDirError: a file that does not parse, or no utterance left.
    """
    d = Path(data_dir)
    tables = {
        name: read_scp(d / name, allow_empty_value=(name == "text"))
        for name in UTT_KEYED
        if (d / name).exists()
    }
    if "wav.scp" not in tables or "utt2spk" not in tables:
        raise DataDirError(f"{d}: wav.scp and utt2spk are required")
    keep = set.intersection(*(set(t) for t in tables.values()))
    dropped = sorted(set.union(*(set(t) for t in tables.values())) - keep, key=_c_order)
    if not keep:
        raise DataDirError(f"{d}: no utterance is present in all of {sorted(tables)}")
    for name, table in tables.items():
        write_scp(d / name, {k: v for k, v in table.items() if k in keep})
    utt2spk = {k: v for k, v in tables["utt2spk"].items() if k in keep}
    write_scp(d / "spk2utt", {s: " ".join(u) for s, u in utt2spk_to_spk2utt(utt2spk).items()})
    if dropped:
        with atomic_write(d / ".backup" / "dropped") as f:
            f.writelines(f"{u}\n" for u in dropped)
    return {"kept": len(keep), "dropped": len(dropped)}


def subset_data_dir(src: str | os.PathLike, dst: str | os.PathLike, utts: Iterable[str]) -> int:
    """Copy the entries of ``utts`` from data dir ``src`` to ``dst`` (every known file).

    Returns:
        int: number of utterances written.

    Raises:
        DataDirError: an id of ``utts`` not in ``src/wav.scp``.
    """
    src, dst = Path(src), Path(dst)
    keep = set(utts)
    wav = read_scp(src / "wav.scp")
    unknown = sorted(keep - set(wav))
    if unknown:
        raise DataDirError(f"{src / 'wav.scp'}: no such utterance(s) {unknown[:5]}")
    for name in UTT_KEYED:
        if (src / name).exists():
            table = read_scp(src / name, allow_empty_value=(name == "text"))
            write_scp(dst / name, {k: v for k, v in table.items() if k in keep})
    utt2spk = {k: v for k, v in read_scp(src / "utt2spk").items() if k in keep}
    write_scp(dst / "spk2utt", {s: " ".join(u) for s, u in utt2spk_to_spk2utt(utt2spk).items()})
    if (src / "spk2gender").exists():
        spks = set(utt2spk.values())
        g = read_scp(src / "spk2gender")
        write_scp(dst / "spk2gender", {s: v for s, v in g.items() if s in spks})
    return len(keep)


def combine_data(out_dir: str | os.PathLike, src_dirs: Sequence[str | os.PathLike]) -> int:
    """Write the union of ``src_dirs`` to ``out_dir`` (as Kaldi's ``utils/combine_data.sh``).

    Utterance-keyed files (:data:`UTT_KEYED`) are joined; a file some sources lack is left
    out, with a warning, except ``text``, where the utterances of those sources get an
    empty transcript (a codec needs no text, and a partial ``text`` would make
    :func:`fix_data_dir` drop their audio). ``spk2gender`` is joined; ``spk2utt`` is made
    anew. The destination is written under a temporary name, validated, and then replaces
    ``out_dir`` whole.

    Args:
        out_dir: the destination data dir (replaced if it exists; must not be a source).
        src_dirs: source data dirs.

    Returns:
        int: number of utterances written.

    Raises:
        DataDirError: no source, an invalid source, an utterance id in two sources, a
            speaker with two genders, or the destination among the sources.
    """
    out = Path(out_dir)
    srcs = [Path(d) for d in src_dirs]
    if not srcs:
        raise DataDirError(f"{out}: no source data dir to combine")
    if any(s.resolve() == out.resolve() for s in srcs):
        raise DataDirError(f"{out}: the destination is also a source")
    for s in srcs:
        problems = validate_data_dir(s)
        if problems:
            raise DataDirError(f"{s}: invalid source data dir: " + "; ".join(problems))
    owner: dict[str, Path] = {}
    tables: dict[str, dict[str, str]] = {}
    for s in srcs:
        for utt in read_scp(s / "wav.scp"):
            if utt in owner:
                raise DataDirError(f"utterance {utt!r} is in both {owner[utt]} and {s}")
            owner[utt] = s
    for name in UTT_KEYED:
        have = [s for s in srcs if (s / name).is_file()]
        if not have:
            continue
        if len(have) < len(srcs) and name != "text":
            log.warning(
                "%s: not in %s: left out of %s",
                name,
                [str(s) for s in srcs if s not in have],
                out,
            )
            continue
        table: dict[str, str] = {}
        for s in srcs:
            if s in have:
                table.update(read_scp(s / name, allow_empty_value=name == "text"))
            else:
                table.update({u: "" for u, o in owner.items() if o == s})
                log.warning("%s has no text: its utterances get an empty one in %s", s, out)
        tables[name] = table
    genders: dict[str, str] = {}
    for s in srcs:
        if (s / "spk2gender").is_file():
            for spk, g in read_scp(s / "spk2gender").items():
                if genders.setdefault(spk, g) != g:
                    raise DataDirError(
                        f"{s / 'spk2gender'}: speaker {spk!r} is {g!r} here, "
                        f"{genders[spk]!r} before"
                    )
    with atomic_dir(out) as tmp:
        for name, table in tables.items():
            write_scp(tmp / name, table)
        utt2spk = tables["utt2spk"]
        spk2utt = utt2spk_to_spk2utt(utt2spk)
        write_scp(tmp / "spk2utt", {k: " ".join(v) for k, v in spk2utt.items()})
        if genders:
            speakers = set(utt2spk.values())
            write_scp(tmp / "spk2gender", {k: v for k, v in genders.items() if k in speakers})
        problems = validate_data_dir(tmp)
        if problems:
            raise DataDirError(f"{out}: combined data dir is invalid: " + "; ".join(problems))
    log.info(
        "combined %s -> %s: %d utterances, %d speakers",
        " + ".join(map(str, srcs)),
        out,
        len(owner),
        len(set(tables["utt2spk"].values())),
    )
    return len(owner)
