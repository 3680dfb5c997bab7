"""On-disk formats and file I/O, each versioned and read back by the same module:

* :mod:`codectk.io.audio`: audio files (soundfile), Kaldi pipe commands in ``wav.scp``,
  resampling (soxr) and conversion of what users hold into what a codec takes
  (:func:`~codectk.io.audio.convert_audio`).
* :mod:`codectk.io.bitstream`: the ``.ctk`` compressed-audio file (docs/bitstream.md).
* :mod:`codectk.io.codes`: discrete codes as Kaldi ark/scp plus a ``codes.json`` sidecar.
* :mod:`codectk.io.datadir`: Kaldi data directories (``wav.scp``, ``utt2spk``, ...).
* :mod:`codectk.io.modelfile`: model files and the training resume state (``torch.save``
  dicts with a format name and version).
* :mod:`codectk.io.fileio`: atomic writes and the reading of versioned JSON headers,
  shared by the modules above.
"""
