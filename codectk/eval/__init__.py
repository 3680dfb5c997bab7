"""Evaluation: the metrics stage 7 computes (:mod:`codectk.eval.metrics`), the scoring of a
decoded set against its references (:mod:`codectk.eval.score`) and what it writes beside
the scores (:mod:`codectk.eval.summary`). The CLI is ``python -m codectk.bin.score``
(docs/evaluation.md)."""
