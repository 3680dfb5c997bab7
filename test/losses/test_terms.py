"""codectk.losses.terms: the quantizer terms and the weighted total every objective uses."""

from __future__ import annotations

import pytest
import torch

from codectk.losses.terms import add_quantizer_terms, weighted_total


def test_quantizer_terms_follow_weights_and_order():
    commit, codebook = torch.tensor(2.0), torch.tensor(3.0)
    terms = {"mel": torch.tensor(1.0)}
    add_quantizer_terms(terms, {"commit": 1.0, "codebook": 1.0}, commit, codebook)
    assert list(terms) == ["mel", "commit", "codebook"]
    terms = {}
    add_quantizer_terms(
        terms, {"commit": 1.0, "codebook": 1.0}, commit, codebook, codebook_first=True
    )
    assert list(terms) == ["codebook", "commit"]
    terms = {}
    add_quantizer_terms(terms, {"commit": 0.0}, commit, codebook)  # weight 0 or missing: left out
    add_quantizer_terms(terms, {"commit": 1.0}, None, None)  # not given: left out
    assert terms == {}


def test_weighted_total_keeps_the_graph_and_logs_detached_parts():
    x = torch.tensor(2.0, requires_grad=True)
    total, parts = weighted_total({"a": x * 3, "b": x}, {"a": 0.5, "b": 2.0}, x)
    assert total.item() == pytest.approx(0.5 * 6 + 2 * 2)
    total.backward()
    assert x.grad.item() == pytest.approx(0.5 * 3 + 2.0)
    assert set(parts) == {"a", "b", "total"} and not any(p.requires_grad for p in parts.values())
    with pytest.raises(KeyError):
        weighted_total({"c": x}, {}, x)
