"""The checks codec.sh and the phase drivers run before any stage
(``python -m codectk.bin.check_recipe``), one :class:`~codectk.errors.ConfigError` for
the first problem, naming the option, the file and the stage that makes it.

* :class:`Recipe`: for the stages that run, the options (set names, stage range, config
  files, ``--codec_exp``), the files earlier stages make, and the model options read and
  built as the stages will (the training config with its overrides and ``${exp:NAME}``
  references, ``--decode_bandwidths`` on the codec's ladder, the ``--anchors``).
* :func:`check_phases`: a chain of phases, each config with its overrides and each
  reference to an earlier phase or an existing experiment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from codectk.config import load_config_with_overrides
from codectk.errors import ConfigError

log = logging.getLogger("codectk.check_recipe")
STAGES = "1 data prep ... 10 token extraction"


class Recipe:
    """The checks of one codec.sh call (see the module docstring).

    Args:
        args: codec.sh's options as ``python -m codectk.bin.check_recipe`` parses them
            (``stage``, ``stop_stage``, ``skip_*``, the sets, ``dumpdir``, ``expdir``,
            ``train_config``, ``train_args``, ``tag``, ``codec_exp``, ``inference_*``,
            ``decode_bandwidths``, ``anchors``, ``hf_repo``; all strings but ``skip_*``).
        train_overrides: splits a ``--train_args`` string into its config overrides
            (the training step's own options, ``--num_threads``, ``--ngpu``, dropped).
    """

    def __init__(self, args, train_overrides: Callable[[str], list[str]]):
        self.a = args
        self.train_overrides = train_overrides
        self.dump = Path(args.dumpdir) / "raw"
        exp = args.codec_exp or f"{args.expdir}/codec_{args.tag}"
        self.model_is_file = Path(exp).is_file()
        # a model file or .zip is read as it is; its outputs go to <expdir>/codec_<tag>
        self.codec_exp = exp
        self.out_exp = f"{args.expdir}/codec_{args.tag}" if self.model_is_file else exp
        self.sfx = f"_{args.inference_tag}" if args.inference_tag else ""

    def runs(self, n: int) -> bool:
        """Stage ``n`` runs in this call (range and the --skip_* options)."""
        a = self.a
        if not int(a.stage) <= n <= int(a.stop_stage):
            return False
        skip = {5: a.skip_train, 6: a.skip_eval, 7: a.skip_eval, 8: a.skip_packing}
        return not (a.skip_data_prep if n <= 4 else skip.get(n, False))

    def options(self) -> None:
        """The options alone (sets, stage range, config files, --codec_exp, --hf_repo)."""
        a = self.a
        for name in ("train_set", "valid_set", "test_sets"):
            if not getattr(a, name).strip():
                raise ConfigError(f"--{name} is required")
        if not (a.stage.isdigit() and a.stop_stage.isdigit()) or not (
            1 <= int(a.stage) <= min(int(a.stop_stage), 10)
        ):
            raise ConfigError(
                f"--stage {a.stage} --stop_stage {a.stop_stage}: stages are 1 to 10 "
                f"({STAGES}), stage <= stop_stage"
            )
        if self.runs(5) and not Path(a.train_config).is_file():
            raise ConfigError(f"--train_config '{a.train_config}': no such file (stage 5 needs it)")
        if int(a.stop_stage) >= 5 and not (a.tag or a.codec_exp):
            raise ConfigError(
                "no experiment: give --train_config <yaml> (its name is the tag), --tag or "
                "--codec_exp"
            )
        reads_model = any(self.runs(n) for n in (6, 7, 8, 9, 10))
        if a.codec_exp and reads_model and not self.runs(5) and not Path(a.codec_exp).exists():
            raise ConfigError(
                f"--codec_exp {a.codec_exp}: no such experiment folder, model file or .zip"
            )
        if a.inference_config and not Path(a.inference_config).is_file():
            raise ConfigError(f"--inference_config '{a.inference_config}': no such file")
        if self.runs(9) and not a.hf_repo:
            raise ConfigError("stage 9 needs --hf_repo user/name")
        if self.model_is_file and (self.runs(5) or self.runs(9)):
            stage = 5 if self.runs(5) else 9
            raise ConfigError(
                f"--codec_exp {a.codec_exp} is a model file: stage {stage} needs an experiment "
                "folder (stages 6, 7 and 10 read a model file)"
            )

    @staticmethod
    def need(path: str | Path, option: str, stage: int) -> None:
        """``path``, named by ``option``, exists; else an error naming ``stage``."""
        if not Path(path).exists():
            raise ConfigError(
                f"{option}: {path} not found; stage {stage} makes it (run it first, or check "
                "the name)"
            )

    def files(self) -> None:
        """What an earlier stage makes exists where that stage does not run now."""
        a, runs, need, dump = self.a, self.runs, self.need, self.dump
        train, valid, tests = a.train_set, a.valid_set, a.test_sets.split()

        def opt(dset: str) -> str:
            name = {train: "train_set", valid: "valid_set"}.get(dset, "test_sets")
            return f"--{name} {dset}"

        if runs(2) and not runs(1):
            for dset in (train, valid, *tests):
                need(f"data/{dset}/wav.scp", opt(dset), 1)
        if runs(3) and not runs(2):
            for dset in (train, valid):
                need(dump / "org" / dset / "wav.scp", opt(dset), 2)
        if (runs(4) or runs(5)) and not runs(3):
            for dset in (train, valid):
                need(dump / dset / "wav.scp", opt(dset), 3)
        if (runs(6) or runs(7)) and not runs(2):
            for dset in tests:
                need(dump / dset / "wav.scp", opt(dset), 2)
        if (runs(6) or runs(8) or runs(10)) and not runs(5):
            model = Path(self.codec_exp)
            if not self.model_is_file:
                model = model / a.inference_model
            need(
                model, "--codec_exp" if a.codec_exp else f"--inference_model {a.inference_model}", 5
            )
        if runs(7) and not runs(6):
            for dset in tests:
                for bw in a.decode_bandwidths.split() or [""]:
                    bw_sfx = f"_{bw}kbps" if bw else ""
                    out = f"{self.out_exp}/decode_{dset}{self.sfx}{bw_sfx}/wav.scp"
                    need(out, f"--test_sets {dset}", 6)
        if runs(9) and not runs(8):
            need(f"{self.out_exp}/packed/codec_{a.tag}.zip", f"--tag {a.tag}", 8)
        if runs(10):
            for dset in a.token_sets.split() or (train, valid, *tests):
                made_by = 3 if dset in (train, valid) else 2
                if not runs(made_by):
                    need(dump / dset / "wav.scp", f"--token_sets {dset}", made_by)

    def model(self) -> None:
        """The codec options, read and built as the stages will."""
        a = self.a
        codec, where = None, None
        if self.runs(5):
            from codectk.models import CODECS
            from codectk.phase import resolve_train_config

            # --train_args holds the training step's own options (--num_threads, --ngpu) too
            overrides = self.train_overrides(a.train_args)
            config = load_config_with_overrides(a.train_config, overrides, "--train_args")
            config = resolve_train_config(config, a.train_config, Path(self.out_exp).parent)
            where = f"{a.train_config} {a.train_args}".strip()
            try:
                codec = CODECS.build(config.codec, config.codec_conf)
            except ValueError as exc:
                raise ConfigError(
                    f"{where}: cannot build the {config.codec} codec: {exc}"
                ) from None
        elif self.runs(6) and a.decode_bandwidths:
            from codectk.inference import load_codec

            codec, where = load_codec(self.codec_exp, a.inference_model), self.codec_exp
        if codec is not None:
            log.info(
                "%s: %s, %.3f M parameters, %d Hz, bitrates %s kbps",
                where,
                type(codec).__name__,
                sum(x.numel() for x in codec.parameters()) / 1e6,
                codec.sample_rate,
                [round(b, 3) for b in codec.bandwidths],
            )
        if self.runs(6):
            for text in a.decode_bandwidths.split():
                try:
                    kbps = float(text)
                except ValueError:
                    raise ConfigError(
                        f"--decode_bandwidths: {text!r} is not a number (kbps)"
                    ) from None
                codec.resolve_bandwidth(kbps)
        if self.runs(7):
            check_anchors(a.anchors)


def check_anchors(anchors: str) -> None:
    """Known anchor names (space or comma list) whose tools are installed.

    Raises:
        ConfigError: an unknown anchor or a missing tool.
    """
    for name in anchors.replace(",", " ").split():
        from codectk.anchors import get_anchor

        try:
            anchor = get_anchor(name)
        except ValueError as exc:
            raise ConfigError(f"--anchors: {exc}") from None
        anchor.check_tools()


def check_phases(
    phases: list[list[str]], expdir: str, train_overrides: Callable[[str], list[str]]
) -> None:
    """A chain of phases ([config, train_args] in order): each config with its
    overrides, and each reference to an earlier phase or an existing experiment.

    Args:
        phases: ``[config path, train_args string]`` per phase, in training order.
        expdir: the folder of the experiments a reference may name.
        train_overrides: splits a train_args string into its config overrides (as for
            :class:`Recipe`).

    Raises:
        ConfigError: a bad config or override, or a dangling reference.
    """
    from codectk.phase import check_chain

    chain = []
    for path, train_args in phases:
        overrides = train_overrides(train_args)
        config = load_config_with_overrides(path, overrides, f"the train_args of {path}")
        chain.append((path, config.to_dict()))
    for (path, _), refs in zip(chain, check_chain(chain, expdir), strict=True):
        names = sorted({r.name for r in refs})
        log.info("phase %s: after %s", path, ", ".join(names) if names else "nothing")
