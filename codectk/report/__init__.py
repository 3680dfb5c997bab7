"""Evaluation reports: rate-distortion tables and plots, spectrogram comparisons, a static
HTML page with audio players, and a MUSHRA (ITU-R BS.1534) listening test.

* :mod:`codectk.report.rd`: collect stage-7 summaries of experiments and anchors into
  rate-distortion points; tables (TSV, markdown) and plots.
* :mod:`codectk.report.spectrogram`: per-utterance log-mel comparisons.
* :mod:`codectk.report.mushra`: stimuli (hidden reference, 3.5 kHz low-pass anchor) and
  the listening-test page; :mod:`codectk.report.mushra_stats` scores its CSV answers.
* :mod:`codectk.report.html`: ``index.html``.
* :mod:`codectk.report.build`: a report's pieces, per set (tables, plots, spectrograms,
  audio copies) and the MUSHRA test, from the modules above.

The entry point is ``python -m codectk.bin.report`` (see docs/evaluation.md).
"""
