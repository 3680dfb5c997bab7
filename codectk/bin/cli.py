"""The ``codectk`` command: ``codectk <step> [options]`` runs ``codectk.bin.<step>``.

Recipe steps: prepare_corpus, prepare_librispeech, combine_data, split_by_speaker,
datadir, dump_wav, filter_length, collect_stats, train, codec_inference (stage 6: a data
dir through a trained codec), score, pack, compare_scores; check_recipe (the options
check codec.sh runs before any stage).
Evaluation (docs/evaluation.md): anchors, report, mushra_scores, upload (stage 9),
extract_tokens (stage 10).

File compression (``codectk.bin.ctk``, docs/bitstream.md):
``codectk encode IN OUT --model M [--bandwidth kbps]``, ``codectk decode IN.ctk OUT.wav
--model M``, ``codectk info FILE.ctk``.

Streaming (any causal codec): ``codectk stream IN.wav OUT.wav --model M [--chunk_ms 12.5]``.

The authors' released weights (docs/pretrained.md): ``codectk convert --list``,
``codectk convert --name encodec_24khz --checkpoint FILE --out model.pt``.

``codectk <step> --help`` describes a step; ``codectk --version`` prints the version.
"""

from __future__ import annotations

import importlib
import sys

from codectk.bin.common import plain_text, run, version

STEPS = [
    "prepare_corpus",
    "prepare_librispeech",
    "combine_data",
    "split_by_speaker",
    "datadir",
    "dump_wav",
    "filter_length",
    "collect_stats",
    "train",
    "codec_inference",
    "score",
    "pack",
    "compare_scores",
    "anchors",
    "report",
    "mushra_scores",
    "upload",
    "extract_tokens",
    "check_recipe",
]
# step names run by another module than codectk.bin.<step>: step -> (module, function)
ALIASES = {
    "encode": ("codectk.bin.ctk", "encode_main"),
    "decode": ("codectk.bin.ctk", "decode_main"),
    "info": ("codectk.bin.ctk", "info_main"),
    "stream": ("codectk.bin.stream", "main"),
    "convert": ("codectk.bin.convert_checkpoint", "main"),
    "convert_checkpoint": ("codectk.bin.convert_checkpoint", "main"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-V", "--version"):
        print(version())
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(plain_text(__doc__), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    step = argv[0]
    if step not in STEPS and step not in ALIASES:
        choices = sorted(set(STEPS) | set(ALIASES))
        print(f"codectk: unknown step {step!r}; choose one of {choices}", file=sys.stderr)
        return 2
    module_name, function = ALIASES.get(step, (f"codectk.bin.{step}", "main"))
    module = importlib.import_module(module_name)
    return int(getattr(module, function)(argv[1:]) or 0)


def console_main() -> int:
    """The installed ``codectk`` command: codectk errors become one ERROR line."""
    return run(main)


if __name__ == "__main__":
    sys.exit(run(main))
