"""Datasets over a dumped data dir (``wav.scp`` + ``utt2num_samples``).

Training draws random crops. Batches are a pure function of (seed, rank, step): the
step-th batch is the same whether training ran straight through or was killed and
resumed, and DataLoader workers need no shared sampler state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from codectk.audio import AudioError, read_audio, to_mono
from codectk.datadir import DataDirError, read_scp


@dataclass
class Batch:
    """A training or validation batch.

    Attributes:
        wav (Tensor): (B, 1, T) float32 in [-1, 1].
        utts (list[str]): utterance id of each row.
        lengths (Tensor): (B,) valid samples per row (the rest is zero padding).
    """

    wav: torch.Tensor
    utts: list[str]
    lengths: torch.Tensor


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
        batch_size (int): examples per batch.
        seed (int), rank (int): the batch of step s depends only on (seed, rank, s).
    """

    def __init__(
        self,
        data_dir,
        sample_rate: int,
        segment_length: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
    ):
        self.data_dir = Path(data_dir)
        lens = read_lengths(data_dir, sample_rate)
        wav = read_scp(self.data_dir / "wav.scp")
        self.utts = sorted(lens)
        if not self.utts:
            raise DataDirError(f"{self.data_dir}: no utterances")
        self.paths = [wav[u] for u in self.utts]
        self.lengths = np.array([lens[u] for u in self.utts], dtype=np.int64)
        self.probs = self.lengths / self.lengths.sum()
        self.segment_length, self.batch_size = segment_length, batch_size
        self.seed, self.rank, self.sample_rate = seed, rank, sample_rate

    def __len__(self) -> int:
        return 2**62

    def _crop(self, i: int, rng: np.random.Generator) -> np.ndarray:
        n, seg, path = int(self.lengths[i]), self.segment_length, self.paths[i]
        start = int(rng.integers(0, n - seg + 1)) if n > seg else 0
        where = f"{self.data_dir / 'wav.scp'} ({self.utts[i]})"
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
        rng = np.random.default_rng([self.seed, self.rank, int(step)])
        idx = rng.choice(len(self.utts), size=self.batch_size, p=self.probs)
        wavs = [self._crop(int(i), rng) for i in idx]
        lengths = [min(int(self.lengths[i]), self.segment_length) for i in idx]
        return Batch(
            wav=torch.from_numpy(np.stack(wavs))[:, None, :],  # (B, T) -> (B, 1, T)
            utts=[self.utts[i] for i in idx],
            lengths=torch.tensor(lengths),
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
        self.sample_rate, self.max_samples = sample_rate, max_samples

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> Batch:
        where = f"{self.data_dir / 'wav.scp'} ({self.utts[i]})"
        wav, fs = read_audio(self.specs[i], where)
        if fs != self.sample_rate:
            raise AudioError(
                f"{self.specs[i]} ({where}) is {fs} Hz, expected {self.sample_rate} Hz"
            )
        wav = to_mono(wav)
        if self.max_samples:
            wav = wav[: self.max_samples]
        x = torch.from_numpy(np.ascontiguousarray(wav))[None, None, :]  # (T,) -> (1, 1, T)
        return Batch(wav=x, utts=[self.utts[i]], lengths=torch.tensor([x.shape[-1]]))


def identity_collate(batch):
    """DataLoader collate for datasets whose items are already batches."""
    return batch
