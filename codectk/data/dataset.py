"""Datasets over a dumped data dir (``wav.scp`` + ``utt2num_samples``).

Training draws random crops. The global batch of a step is a pure function of
(seed, step): the same whether training ran straight through or was killed and resumed,
and the same however many ranks share it (rank r of W takes rows r*B/W to (r+1)*B/W), so
a DDP run sees exactly the data of a single process with the same global batch. DataLoader
workers need no shared sampler state. Crops all have the same length, so training needs
no length bucketing; validation shards utterances over ranks in length order
(:meth:`UtteranceDataset.shard`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from codectk.io.audio import AudioError, read_audio, to_mono
from codectk.io.datadir import DataDirError, read_scp


@dataclass
class Batch:
    """A training or validation batch.

    Attributes:
        wav (Tensor): (B, 1, T) float32 in [-1, 1].
        utts (list[str]): utterance id of each row.
        lengths (Tensor): (B,) valid samples per row (the rest is zero padding).
        target (Tensor | None): (B, 1, T) clean targets of a noisy/clean pair dir (a
            ``clean.scp`` beside ``wav.scp``, same crops), else None; the trainer's
            reconstruction and adversarial losses then compare with ``target``.
    """

    wav: torch.Tensor
    utts: list[str]
    lengths: torch.Tensor
    target: torch.Tensor | None = None


def read_targets(data_dir: Path, utts: list[str]) -> list[str] | None:
    """Paths of ``clean.scp`` (noisy/clean pairs, ``codectk.bin.make_noisy``) in the order
    of ``utts``, or None without that file.

    Raises:
        DataDirError: ``clean.scp`` lacks some of the utterances.
    """
    path = data_dir / "clean.scp"
    if not path.exists():
        return None
    table = read_scp(path)
    missing = [u for u in utts if u not in table]
    if missing:
        raise DataDirError(
            f"{path}: no clean target for {len(missing)} utterances, e.g. {missing[0]}"
        )
    return [table[u] for u in utts]


def read_lengths(data_dir: str | os.PathLike, sample_rate: int) -> dict[str, int]:
    """Read ``utt2num_samples`` of a dumped data dir, checking its ``wav.scp`` agrees.

    Raises:
        DataDirError: missing files, mismatched ids, or a dump at another sample rate
            (the dump writes ``fs`` beside its wav.scp).
    """
    d = Path(data_dir)
    wav = read_scp(d / "wav.scp")
    lens = {k: int(v) for k, v in read_scp(d / "utt2num_samples").items()}
    if set(wav) != set(lens):
        raise DataDirError(f"{d}: wav.scp and utt2num_samples hold different utterances")
    fs_file = d / "fs"
    if fs_file.exists() and int(fs_file.read_text().strip()) != sample_rate:
        raise DataDirError(
            f"{fs_file}: data dumped at {fs_file.read_text().strip()} Hz but the codec expects "
            f"{sample_rate} Hz; re-run stage 2 with --fs {sample_rate}"
        )
    return lens


class RandomCropDataset(Dataset):
    """Item ``step`` is the whole training batch of that step.

    Utterances are drawn with probability proportional to their length (every second
    of audio is equally likely), then a random ``segment_length``-sample crop is taken;
    shorter utterances are zero-padded.

    Args:
        data_dir: dumped data dir (wav.scp, utt2num_samples at ``sample_rate``).
        sample_rate (int): Hz.
        segment_length (int): samples per example.
        batch_size (int): examples per global batch (all ranks together).
        seed (int): the global batch of step s depends only on (seed, s).
        rank (int), world_size (int): this process takes rows
            ``rank * batch_size / world_size`` to ``(rank + 1) * batch_size / world_size``.

    Raises:
        ValueError: ``batch_size`` not divisible by ``world_size``.
    """

    def __init__(
        self,
        data_dir,
        sample_rate: int,
        segment_length: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size % world_size:
            raise ValueError(
                f"batch_size {batch_size} (global) is not divisible by the {world_size} ranks"
            )
        self.data_dir = Path(data_dir)
        lens = read_lengths(data_dir, sample_rate)
        wav = read_scp(self.data_dir / "wav.scp")
        self.utts = sorted(lens)
        if not self.utts:
            raise DataDirError(f"{self.data_dir}: no utterances")
        self.paths = [wav[u] for u in self.utts]
        self.target_paths = read_targets(self.data_dir, self.utts)
        self.lengths = np.array([lens[u] for u in self.utts], dtype=np.int64)
        self.probs = self.lengths / self.lengths.sum()
        self.segment_length, self.batch_size = segment_length, batch_size
        self.seed, self.rank, self.world_size, self.sample_rate = (
            seed,
            rank,
            world_size,
            sample_rate,
        )

    def __len__(self) -> int:
        return 2**62

    def _crop(self, i: int, rng: np.random.Generator) -> np.ndarray:
        n, seg = int(self.lengths[i]), self.segment_length
        start = int(rng.integers(0, n - seg + 1)) if n > seg else 0
        self._last_start = start  # the clean target of a pair takes the same crop
        return self._read_crop(self.paths[i], i, start, "wav.scp")

    def _read_crop(self, path: str, i: int, start: int, scp: str) -> np.ndarray:
        seg = self.segment_length
        where = f"{self.data_dir / scp} ({self.utts[i]})"
        if path.endswith("|"):
            wav, fs = read_audio(path, where)
            wav = to_mono(wav)[start : start + seg]
        else:
            try:
                data, fs = sf.read(path, start=start, frames=seg, dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioError(f"cannot read {path} ({where}): {exc}") from None
            wav = data.mean(axis=1)
        if fs != self.sample_rate:
            raise AudioError(f"{path} ({where}) is {fs} Hz, expected {self.sample_rate} Hz")
        out = np.zeros(seg, dtype=np.float32)
        out[: len(wav)] = wav
        return out

    def __getitem__(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, int(step)])
        idx = rng.choice(len(self.utts), size=self.batch_size, p=self.probs)
        per_rank = self.batch_size // self.world_size
        rows = range(self.rank * per_rank, (self.rank + 1) * per_rank)
        idx = idx[rows.start : rows.stop]
        wavs, targets = [], []
        for i, j in zip(idx, rows):
            wavs.append(self._crop(int(i), np.random.default_rng([self.seed, int(step), j])))
            if self.target_paths is not None:
                path = self.target_paths[int(i)]
                targets.append(self._read_crop(path, int(i), self._last_start, "clean.scp"))
        lengths = [min(int(self.lengths[i]), self.segment_length) for i in idx]
        return Batch(
            wav=torch.from_numpy(np.stack(wavs))[:, None, :],  # (B, T) -> (B, 1, T)
            utts=[self.utts[i] for i in idx],
            lengths=torch.tensor(lengths),
            target=torch.from_numpy(np.stack(targets))[:, None, :] if targets else None,
        )


class UtteranceDataset(Dataset):
    """Whole utterances (at most ``max_samples`` each), one per item, in sorted order.

    Args:
        data_dir: data dir with wav.scp (utt2num_samples not required).
        sample_rate (int): expected rate in Hz; a file at another rate is an error.
        max_samples (int | None): truncate longer utterances.
    """

    def __init__(self, data_dir, sample_rate: int, max_samples: int | None = None):
        self.data_dir = Path(data_dir)
        wav = read_scp(self.data_dir / "wav.scp")
        self.utts = sorted(wav, key=lambda k: k.encode())
        self.specs = [wav[u] for u in self.utts]
        self.targets = read_targets(self.data_dir, self.utts)
        self.sample_rate, self.max_samples = sample_rate, max_samples

    def __len__(self) -> int:
        return len(self.utts)

    def shard(self, rank: int, world_size: int) -> list[int]:
        """Indices this rank validates: utterances in decreasing length (from
        ``utt2num_samples`` when present) dealt round-robin, so ranks get similar amounts
        of audio. Every index goes to exactly one rank."""
        lens_file = self.data_dir / "utt2num_samples"
        if lens_file.exists():
            lens = {k: int(v) for k, v in read_scp(lens_file).items()}
            order = sorted(range(len(self.utts)), key=lambda i: -lens.get(self.utts[i], 0))
        else:
            order = list(range(len(self.utts)))
        return order[rank::world_size]

    def _load(self, spec: str, where: str) -> torch.Tensor:
        wav, fs = read_audio(spec, where)
        if fs != self.sample_rate:
            raise AudioError(f"{spec} ({where}) is {fs} Hz, expected {self.sample_rate} Hz")
        wav = to_mono(wav)
        if self.max_samples:
            wav = wav[: self.max_samples]
        return torch.from_numpy(np.ascontiguousarray(wav))[None, None, :]  # (T,) -> (1, 1, T)

    def __getitem__(self, i: int) -> Batch:
        x = self._load(self.specs[i], f"{self.data_dir / 'wav.scp'} ({self.utts[i]})")
        target = None
        if self.targets is not None:
            where = f"{self.data_dir / 'clean.scp'} ({self.utts[i]})"
            target = self._load(self.targets[i], where)
            if target.shape != x.shape:
                raise AudioError(
                    f"{self.targets[i]} ({where}): clean target has {target.shape[-1]} samples, "
                    f"the noisy input {x.shape[-1]}"
                )
        return Batch(wav=x, utts=[self.utts[i]], lengths=torch.tensor([x.shape[-1]]), target=target)


def identity_collate(batch):
    """DataLoader collate for datasets whose items are already batches."""
    return batch
