"""Let the authors' code written for older torch / librosa run unchanged in tools/venv-compare.

* ``torch.stft`` without ``return_complex`` returned the real view (..., 2) before torch
  2.0 and is an error since; :func:`legacy_stft` restores that result
  (``view_as_real`` of the complex STFT, which is what the old call computed) for one
  module, by giving it a ``torch`` whose ``stft`` is the old one.
* ``librosa.filters.mel`` takes keyword arguments only since librosa 0.10;
  :func:`positional_librosa_mel` accepts the old positional call.
"""

from __future__ import annotations

import types

import torch


class _LegacyStftTorch(types.ModuleType):
    """``torch`` as a module attribute, except ``stft`` (old real-view result)."""

    def __init__(self):
        super().__init__("torch")

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def stft(*args, **kwargs):
        if kwargs.get("return_complex") is None:
            kwargs["return_complex"] = True
            return torch.view_as_real(torch.stft(*args, **kwargs))
        return torch.stft(*args, **kwargs)


def legacy_stft(module: types.ModuleType) -> types.ModuleType:
    """Make ``module``'s calls of ``torch.stft`` behave as in torch 1.x; returns it."""
    module.torch = _LegacyStftTorch()
    return module


def positional_librosa_mel(sr, n_fft, n_mels=128, fmin=0.0, fmax=None):
    """``librosa.filters.mel`` called positionally, as librosa < 0.10 allowed."""
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
