"""EnCodec: the authors' released ``encodec_24khz-*.th`` / ``encodec_48khz-*.th`` files.

Défossez et al., "High Fidelity Neural Audio Compression", TMLR 2023; weights of the
``encodec`` package (``EncodecModel.encodec_model_24khz`` / ``_48khz``). The files are
the model's ``state_dict``; keys map one to one onto :class:`codectk.models.encodec.EnCodec`
built from ``conf/encodec_24k_24kbps.yaml`` (same SEANet indices, same LSTM names),
except:

* ``<x>.conv.conv.weight_g|weight_v|bias`` (SConv1d -> NormConv1d -> Conv1d) and
  ``<x>.convtr.convtr.*`` -> codectk's ``<x>.conv.parametrizations.weight.original0|1``,
  ``<x>.conv.bias`` (the same g and v tensors);
* ``<x>.conv.norm.weight|bias`` (48 kHz time group norm) -> ``<x>.norm.*``;
* ``quantizer.vq.layers.<i>._codebook.{embed,embed_avg,cluster_size}`` ->
  ``quantizer.layers.<i>.codebook.*`` and ``inited`` (shape (1,)) -> ``initialized``.

The 48 kHz model is stereo: convert it with ``--codec_conf.channels 2``. Its per-segment
volume normalisation (a scale sent beside the codes) is not part of codectk's codec, so
audio is coded at its own level.
"""

from __future__ import annotations

from codectk.convert import CONVERTERS
from codectk.convert.common import Converter


@CONVERTERS.register("encodec")
class EnCodecConverter(Converter):
    """Converter of the authors' EnCodec state dicts (see module doc)."""

    codec = "encodec"
    renames = (
        (
            r"^quantizer\.vq\.layers\.(\d+)\._codebook\.inited$",
            r"quantizer.layers.\1.codebook.initialized",
        ),
        (r"^quantizer\.vq\.layers\.(\d+)\._codebook\.", r"quantizer.layers.\1.codebook."),
    )
