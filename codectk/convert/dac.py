"""DAC: the authors' released ``weights_44khz_8kbps_*.pth`` / ``24khz`` / ``16khz`` files.

Kumar et al., "High-Fidelity Audio Compression with Improved RVQGAN", NeurIPS 2023;
files written by ``descript-audio-codec`` (``DAC.save``): a dict with ``state_dict`` and
``metadata["kwargs"]`` (the ``DAC`` constructor arguments, which share codectk's names).
Keys map one to one onto :class:`codectk.models.dac.DAC` (same ``nn.Sequential`` indices),
except:

* ``<x>.weight_g|weight_v|bias`` of a conv -> codectk's
  ``<x>.conv.parametrizations.weight.original0|1`` / ``<x>.conv.bias`` (``<x>.convtr.*`` for
  the decoder's transposed convs; the quantizer's 1x1 ``in_proj`` / ``out_proj`` keep
  ``<x>.parametrizations...``);
* ``quantizer.quantizers.<i>.*`` -> ``quantizer.layers.<i>.*``.

The metadata's architecture arguments must equal the config's ``codec_conf``.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor

from codectk.convert import CONVERTERS
from codectk.convert.common import ConversionError, Converter

_ARCH_KEYS = (
    "sample_rate",
    "encoder_dim",
    "encoder_rates",
    "latent_dim",
    "decoder_dim",
    "decoder_rates",
    "n_codebooks",
    "codebook_size",
    "codebook_dim",
)


@CONVERTERS.register("dac")
class DACConverter(Converter):
    """Converter of the authors' DAC checkpoints (see module doc)."""

    codec = "dac"
    renames = ((r"^quantizer\.quantizers\.", "quantizer.layers."),)

    def generator_state_dict(self, obj: dict[str, Any]) -> dict[str, Tensor]:
        """``obj["state_dict"]`` (DAC.save's layout), or ``obj`` itself if it is one."""
        return super().generator_state_dict(obj.get("state_dict", obj))

    def check_config(self, obj: dict[str, Any], codec_conf: dict[str, Any]) -> None:
        """Compare ``metadata["kwargs"]`` (when present) with the config.

        Raises:
            ConversionError: naming each differing argument.
        """
        kwargs = (obj.get("metadata") or {}).get("kwargs") or {}
        conf = {**_defaults(), **codec_conf}
        conf["encoder_rates"] = conf["encoder_rates"] or [2, 4, 8, 8]  # DAC.__init__'s
        conf["decoder_rates"] = conf["decoder_rates"] or [8, 8, 4, 2]
        if conf["latent_dim"] is None:  # as DAC.__init__ resolves it
            conf["latent_dim"] = conf["encoder_dim"] * 2 ** len(conf["encoder_rates"])
        diff = {
            k: (kwargs[k], conf[k])
            for k in _ARCH_KEYS
            if k in kwargs and kwargs[k] is not None and _as_list(kwargs[k]) != _as_list(conf[k])
        }
        if diff:
            raise ConversionError(
                "the checkpoint's DAC arguments differ from codec_conf "
                + ", ".join(f"{k}: checkpoint {a} vs config {b}" for k, (a, b) in diff.items())
            )


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _defaults() -> dict[str, Any]:
    """Default arguments of codectk's DAC (those a config may leave out)."""
    from codectk.models.dac import DAC

    params = inspect.signature(DAC).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
