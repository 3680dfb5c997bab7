"""Combine Kaldi data dirs into one (as Kaldi's ``utils/combine_data.sh``).

Usage::

    python -m codectk.bin.combine_data data/train-960 \\
        data/train-clean-100 data/train-clean-360 data/train-other-500

Every source must be a valid data dir and no utterance id may occur in two of them.
Utterance-keyed files (``wav.scp``, ``utt2spk``, ``utt2num_samples``, ...) are joined;
a file some sources lack is left out, with a warning, except ``text``, where the
utterances of those sources get an empty transcript (a codec needs no text, and a
partial ``text`` would make ``fix_data_dir`` drop their audio). ``spk2gender`` is joined
(a speaker with two genders is an error); ``spk2utt`` is made anew. The destination is
written under a temporary name, validated, and then replaces ``<dest>`` whole.
"""

from __future__ import annotations

import sys

from codectk.bin.common import parser, run
from codectk.io.datadir import combine_data
from codectk.log import setup_logging


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (errors raise :class:`DataDirError`)."""
    p = parser(__doc__)
    p.add_argument("dest", help="the data dir to write")
    p.add_argument("srcs", nargs="+", help="the data dirs to combine")
    args = p.parse_args(argv)
    setup_logging()
    combine_data(args.dest, args.srcs)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
