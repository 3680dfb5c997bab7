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

The metadata's architecture arguments (the authors' flat names: ``encoder_dim``,
``encoder_rates``, ``latent_dim``, ``decoder_dim``, ``decoder_rates``, ``n_codebooks``,
``codebook_size``, ``codebook_dim``) must equal the config's ``codec_conf`` (where they are
``encoder.dim``, ``encoder.rates``, ``encoder.latent_dim``, ``decoder.dim``,
``decoder.rates`` and ``quantizer.*``).

The authors' ``Discriminator`` (saved beside the generator by their training script) maps
onto codectk's ``dac`` discriminator with :meth:`DACConverter.discriminator_state_dict`:
its ``discriminators.<i>`` are the P periods' ``MPD`` then the ``MRD`` of each window, and
each weight-normalised conv is the first entry of a ``Sequential(conv, LeakyReLU)``:

* ``discriminators.<i>.convs.<l>.0.*`` (i < P) -> ``mpd.discriminators.<i>.layers.<l>.*``,
  ``discriminators.<i>.conv_post.*`` -> ``mpd.discriminators.<i>.post.*``;
* ``discriminators.<P + j>.band_convs.<b>.<l>.0.*`` ->
  ``mrd.discriminators.<j>.band_convs.<b>.<l>.*``, ``discriminators.<P + j>.conv_post.*``
  -> ``mrd.discriminators.<j>.conv_post.*``;
* ``weight_g`` / ``weight_v`` -> ``parametrizations.weight.original0`` / ``original1``.

Their multi-scale ``MSD`` (``rates``, empty in every released config) has no counterpart.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor, nn

from codectk.config import version_1_codec_keys
from codectk.convert import CONVERTERS
from codectk.convert.common import ConversionError, Converter, map_state_dict
from codectk.registry import merge_sections

# the authors' DAC argument -> its place in codectk's codec_conf ("section.key"): their
# names are codectk's version-1 names, so the version-1 key map says where each went
_ARCH_KEYS = {"sample_rate": "sample_rate", **version_1_codec_keys("dac")}


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
        conf = _flat_conf(codec_conf)
        diff = {
            k: (kwargs[k], conf[k])
            for k in _ARCH_KEYS
            if k in kwargs and kwargs[k] is not None and _as_list(kwargs[k]) != _as_list(conf[k])
        }
        if diff:
            raise ConversionError(
                "the checkpoint's DAC arguments differ from codec_conf "
                + ", ".join(
                    f"{k}: checkpoint {a} vs config {b} (codec_conf.{_ARCH_KEYS[k]})"
                    for k, (a, b) in diff.items()
                )
            )

    def discriminator_state_dict(self, source: dict[str, Tensor], target: nn.Module) -> dict:
        """Map the authors' ``Discriminator`` state dict onto a codectk ``dac`` discriminator.

        Args:
            source (dict[str, Tensor]): ``dac.model.Discriminator().state_dict()`` (or the
                ``state_dict`` entry of its saved file).
            target (nn.Module): a :class:`~codectk.discriminators.dac.DACDiscriminator`
                with the same periods, windows and bands (its keys and shapes decide).

        Returns:
            dict: a state dict for ``target.load_state_dict(..., strict=True)``.

        Raises:
            ConversionError: keys or shapes that do not fit (e.g. other periods, windows,
                bands, or an ``MSD`` the target does not have).
        """
        source = source.get("state_dict", source)
        return map_state_dict(source, target, self.discriminator_renames(target))

    @staticmethod
    def discriminator_renames(target: nn.Module) -> list[tuple[str, str]]:
        """The regex renames of :meth:`discriminator_state_dict` for ``target``'s layout.

        Args:
            target (nn.Module): a codectk ``dac`` discriminator (its number of periods
                decides where the authors' ``MRD`` entries start).

        Returns:
            list[tuple[str, str]]: ``(pattern, replacement)`` pairs.
        """
        n_periods = len(target.mpd.discriminators)
        renames = []
        for i in range(n_periods):
            renames += [
                (
                    rf"^discriminators\.{i}\.convs\.(\d+)\.0\.",
                    rf"mpd.discriminators.{i}.layers.\1.",
                ),
                (rf"^discriminators\.{i}\.conv_post\.", rf"mpd.discriminators.{i}.post."),
            ]
        for j in range(len(target.mrd.discriminators)):
            i = n_periods + j
            renames += [
                (
                    rf"^discriminators\.{i}\.band_convs\.(\d+)\.(\d+)\.0\.",
                    rf"mrd.discriminators.{j}.band_convs.\1.\2.",
                ),
                (rf"^discriminators\.{i}\.conv_post\.", rf"mrd.discriminators.{j}.conv_post."),
            ]
        return renames


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _flat_conf(codec_conf: dict[str, Any]) -> dict[str, Any]:
    """``codec_conf`` (sections over codectk's DAC defaults) under the authors' flat
    argument names, ``latent_dim`` resolved as DAC resolves it."""
    from codectk.models.dac import DAC

    sample_rate = inspect.signature(DAC).parameters["sample_rate"].default
    defaults = dict(
        sample_rate=sample_rate, encoder=DAC.ENCODER, decoder=DAC.DECODER, quantizer=DAC.QUANTIZER
    )
    conf = merge_sections(defaults, codec_conf)
    flat = {}
    for name, place in _ARCH_KEYS.items():
        node = conf
        for part in place.split("."):
            node = node[part]
        flat[name] = node
    if flat["latent_dim"] is None:
        flat["latent_dim"] = flat["encoder_dim"] * 2 ** len(flat["encoder_rates"])
    return flat
