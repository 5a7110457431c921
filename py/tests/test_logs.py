"""Tests for dpo_sweep_worker.logs.margin_summary (seed-spec §3.6). Expected values by hand."""

import math

import numpy as np
import pytest
import torch

from dpo_sweep_worker.logs import MARGIN_SUMMARY_FIELDS, margin_summary


def test_margin_summary_hand_example():
    """M = [3, −1, 0, 2, 1] (sorted [−1, 0, 1, 2, 3], n = 5):
    mean = 5/5 = 1; std (ddof 0) = sqrt((4 + 1 + 0 + 1 + 4)/5) = sqrt(2);
    min −1, max 3;
    p10: position 0.1·4 = 0.4 ⇒ −1 + 0.4·(0 − (−1)) = −0.6;
    median: position 2 ⇒ 1;
    p90: position 0.9·4 = 3.6 ⇒ 2 + 0.6·(3 − 2) = 2.6;
    pos_frac = #{M > 0}/5 = #{3, 2, 1}/5 = 0.6 (the 0 is not positive).
    """
    for margins in ([3.0, -1.0, 0.0, 2.0, 1.0], torch.tensor([3.0, -1.0, 0.0, 2.0, 1.0]), np.array([3, -1, 0, 2, 1])):
        s = margin_summary(margins)
        assert tuple(s) == MARGIN_SUMMARY_FIELDS
        assert all(type(v) is float for v in s.values())
        assert s["mean"] == pytest.approx(1.0, abs=1e-12)
        assert s["std"] == pytest.approx(math.sqrt(2.0), abs=1e-12)
        assert s["min"] == -1.0 and s["max"] == 3.0
        assert s["p10"] == pytest.approx(-0.6, abs=1e-12)
        assert s["median"] == pytest.approx(1.0, abs=1e-12)
        assert s["p90"] == pytest.approx(2.6, abs=1e-12)
        assert s["pos_frac"] == 0.6


def test_margin_summary_single_and_all_zero():
    """One margin 2.5: every statistic is 2.5, std 0, pos_frac 1.
    Four exact zeros (the seed's zero-margin symptom): pos_frac = 0 (strict >), std 0."""
    s = margin_summary(torch.tensor([2.5]))
    assert s == {k: (0.0 if k == "std" else 1.0 if k == "pos_frac" else 2.5) for k in MARGIN_SUMMARY_FIELDS}
    z = margin_summary(torch.zeros(4, dtype=torch.bfloat16, requires_grad=True))
    assert z["pos_frac"] == 0.0 and z["std"] == 0.0 and z["mean"] == 0.0


def test_margin_summary_empty_raises():
    with pytest.raises(ValueError):
        margin_summary([])
    with pytest.raises(ValueError):
        margin_summary(torch.zeros(0))
