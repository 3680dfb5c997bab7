"""Import the authors' released EnCodec or DAC generator weights as a codectk model file.

Usage::

    python -m codectk.bin.convert_checkpoint --family encodec \\
        --checkpoint encodec_24khz-d7cc33bc.th --config conf/encodec_24k_24kbps.yaml \\
        --out exp/codec_encodec_24k_released/model.pt
    python -m codectk.bin.convert_checkpoint --family dac \\
        --checkpoint weights_44khz_8kbps_0.0.1.pth --config conf/dac_44k_8kbps.yaml \\
        --out exp/codec_dac_44k_released/model.pt
    # the stereo 48 kHz EnCodec: add --codec_conf.channels 2

Any further ``--key value`` overrides the config as in training. The output is a codectk
model file (format ``codectk-model``, the resolved config inside) that
``codectk.load_codec(<out>)`` and ``codectk.bin.decode --model`` read; keys, shapes and
the file's own metadata are checked against the config (see :mod:`codectk.convert`).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

from codectk.bin.common import parser, run, setup_logging
from codectk.config import load_train_config
from codectk.convert import CONVERTERS, convert_checkpoint
from codectk.train.checkpoint import model_file, save_atomic

log = logging.getLogger("codectk")


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--family", required=True, choices=CONVERTERS.names())
    p.add_argument("--checkpoint", required=True, help="the authors' weights file")
    p.add_argument("--config", required=True, help="codectk training config of the model")
    p.add_argument("--out", required=True, help="codectk model file to write (.pt)")
    args, overrides = p.parse_known_args(argv)
    setup_logging()
    config = load_train_config(args.config, overrides)
    codec = convert_checkpoint(args.family, args.checkpoint, config)
    digest = hashlib.sha256(Path(args.checkpoint).read_bytes()).hexdigest()
    metrics = {"converted_from": Path(args.checkpoint).name, "sha256": digest}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_atomic(model_file(config.to_dict(), codec.state_dict(), 0, metrics), args.out)
    n_params = sum(x.numel() for x in codec.parameters())
    log.info(
        "wrote %s: %s from %s (%.3f M parameters, %d Hz, %d codebooks)",
        args.out,
        config.codec,
        args.checkpoint,
        n_params / 1e6,
        codec.sample_rate,
        codec.n_codebooks,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
