"""Evaluation: the metrics stage 7 computes (:mod:`codectk.eval.metrics`) and the scoring
of a decoded set against its references (:mod:`codectk.eval.score`). The CLI is
``python -m codectk.bin.score`` (docs/evaluation.md)."""
