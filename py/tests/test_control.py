"""Tests for dpo_sweep_worker.control (seed-spec §1.2 risk-based dynamic β, §1.3 β-DPO).

Expected numbers are derived by hand in the docstrings from the equations (linear-interpolation
quantile at position (n − 1)·q of the sorted values, EMA, p̂ with ≥, σ_n, u, s, β update; β-DPO
moments, EMA, Gaussian weights, k, β_used). The assertions evaluate the same arithmetic on the
hand-written intermediate numbers.
"""

import json
import math

import pytest
import torch

from dpo_sweep_worker.control import BetaDPOController, RiskBetaController


def _risk(**kw):
    params = dict(
        delta=0.1, ema_lambda=0.5, warmup=1, beta0=0.1, alpha=0.5, gamma=0.1, beta_min=0.01, beta_max=1.0
    )
    params.update(kw)
    return RiskBetaController(**params)


def _json_roundtrip(state):
    return json.loads(json.dumps(state, allow_nan=False))


# --- RiskBetaController --------------------------------------------------------------------------


def test_risk_three_margin_hand_example():
    """δ = 0.1 (q = 0.9), λ = 0.5, W = 1, β₀ = 0.1, α = 0.5, γ = 0.1.

    Update 1 (warm-up, W-th update): buffer = [1, 2, 3]; position (3 − 1)·0.9 = 1.8
      ⇒ τ₀ = 2 + 0.8·(3 − 2) = 2.8; warmed_up; β stays 0.1; p̂/u/s still None.
    Update 2 (adaptive), M = [0, 3, 5]:
      batch quantile: position 1.8 of [0, 3, 5] ⇒ 3 + 0.8·(5 − 3) = 4.6
      τ = (1 − 0.5)·2.8 + 0.5·4.6 = 1.4 + 2.3 = 3.7        (EMA first ...)
      p̂ = #{M_i ≥ 3.7}/3 = #{5}/3 = 1/3                    (... then p̂; with the old τ = 2.8 it
                                                             would have been 2/3)
      fail = 1/3 > 0.1 = True
      σ_n = sqrt(0.1·0.9/3) = sqrt(0.03) ≈ 0.1732051
      u = (1/3 − 0.1)/0.1732051 = 0.2333333/0.1732051 ≈ 1.347151
      s = tanh(0.1·1.347151) = tanh(0.1347151) ≈ 0.133906
      β = 0.1·exp(0.5·0.133906) = 0.1·exp(0.066953) ≈ 0.1069245
    """
    c = _risk()
    assert c.tau is None and c.p_hat is None and not c.warmed_up
    assert c.update(torch.tensor([1.0, 2.0, 3.0])) == 0.1
    assert c.warmed_up and c.count == 1
    assert c.tau == pytest.approx(2.8, abs=1e-12)
    assert c.beta == 0.1
    assert c.p_hat is None and c.u_k is None and c.s_k is None and c.fail is None
    assert c.buffer == []

    beta = c.update(torch.tensor([0.0, 3.0, 5.0]))
    assert c.tau == pytest.approx(3.7, abs=1e-12)
    assert c.p_hat == pytest.approx(1 / 3, abs=0)
    assert c.fail is True
    u = (1 / 3 - 0.1) / math.sqrt(0.03)
    assert c.u_k == pytest.approx(u, rel=1e-12)
    assert c.u_k == pytest.approx(1.347151, abs=1e-6)
    s = math.tanh(0.1 * u)
    assert c.s_k == pytest.approx(s, rel=1e-12)
    assert c.s_k == pytest.approx(0.133906, abs=1e-6)
    assert beta == c.beta
    assert beta == pytest.approx(0.1 * math.exp(0.5 * s), rel=1e-12)
    assert beta == pytest.approx(0.1069245, abs=1e-7)
    assert c.stats()["beta"] == beta and c.stats()["p_hat"] == c.p_hat


def test_risk_warmup_transition():
    """W = 3, δ = 0.1, λ = 0.1, β₀ = 0.2, α = 0.1, γ = 0.5.

    Updates 1, 2 ([1, 2], [3, 4]): buffered, τ None, β = 0.2.
    Update 3 ([5, 6], the W-th): buffer [1, 2, 3, 4, 5, 6]; position (6 − 1)·0.9 = 4.5
      ⇒ τ₀ = 5 + 0.5·(6 − 5) = 5.5; β still 0.2 (not changed on the W-th update).
    Update 4 ([10, 10]): batch quantile 10; τ = 0.9·5.5 + 0.1·10 = 4.95 + 1 = 5.95;
      p̂ = 2/2 = 1; σ_n = sqrt(0.1·0.9/2) = sqrt(0.045) ≈ 0.212132;
      u = 0.9/0.212132 ≈ 4.242641; s = tanh(0.5·4.242641) = tanh(2.121320) ≈ 0.971668;
      β = 0.2·exp(0.1·0.971668) = 0.2·1.102045 ≈ 0.220409.
    """
    c = _risk(warmup=3, ema_lambda=0.1, beta0=0.2, alpha=0.1, gamma=0.5)
    assert c.update([1.0, 2.0]) == 0.2
    assert not c.warmed_up and c.tau is None and c.buffer == [1.0, 2.0]
    assert c.update(torch.tensor([3.0, 4.0])) == 0.2
    assert not c.warmed_up and c.count == 2 and c.buffer == [1.0, 2.0, 3.0, 4.0]
    assert c.update(torch.tensor([5.0, 6.0])) == 0.2
    assert c.warmed_up and c.count == 3
    assert c.tau == pytest.approx(5.5, abs=1e-12)
    assert c.beta == 0.2 and c.p_hat is None

    beta = c.update(torch.tensor([10.0, 10.0]))
    assert c.count == 4
    assert c.tau == pytest.approx(5.95, abs=1e-12)
    assert c.p_hat == 1.0 and c.fail is True
    u = 0.9 / math.sqrt(0.045)
    assert c.u_k == pytest.approx(u, rel=1e-12)
    assert c.u_k == pytest.approx(4.242641, abs=1e-6)
    s = math.tanh(0.5 * u)
    assert c.s_k == pytest.approx(0.971668, abs=1e-6)
    assert beta == pytest.approx(0.2 * math.exp(0.1 * s), rel=1e-12)
    assert beta == pytest.approx(0.220409, abs=1e-6)


def test_risk_ties_at_tau_are_counted():
    """≥, as in the seed. W = 1, δ = 0.1, λ = 0.3, α = 0.01, γ = 1.

    Warm-up [0, 0, 0] ⇒ τ₀ = 0. Update [0, 0, 0, 0]: batch quantile 0, τ = 0.7·0 + 0.3·0 = 0;
    every margin equals τ, so p̂ = 4/4 = 1 (a strict > would give 0); σ_n = sqrt(0.09/4) = 0.15;
    u = (1 − 0.1)/0.15 = 6; s = tanh(6) ≈ 0.9999877; β = 0.1·exp(0.01·0.9999877) ≈ 0.1010050.
    """
    c = _risk(ema_lambda=0.3, alpha=0.01, gamma=1.0)
    c.update([0.0, 0.0, 0.0])
    assert c.tau == 0.0
    beta = c.update(torch.zeros(4))
    assert c.p_hat == 1.0 and c.fail is True
    assert c.u_k == pytest.approx(6.0, rel=1e-12)
    assert c.s_k == pytest.approx(math.tanh(6.0), rel=1e-12)
    assert beta == pytest.approx(0.1010050, abs=1e-7)


def test_risk_u_zero_leaves_beta_unchanged():
    """δ = 0.25 (q = 0.75), λ = 0 (τ frozen at τ₀), W = 1.

    Warm-up [1, 2, 3, 4, 5]: position 4·0.75 = 3 ⇒ τ₀ = 4 (exactly a data point).
    Update [0, 1, 2, 10]: τ = 1·4 + 0·(batch quantile) = 4; p̂ = #{10}/4 = 0.25 = δ
    ⇒ u = 0, s = tanh(0) = 0, β = β·exp(0) = β exactly; fail = 0.25 > 0.25 = False.
    """
    c = _risk(delta=0.25, ema_lambda=0.0, beta0=0.3, alpha=0.7, gamma=3.0, beta_max=2.0)
    c.update(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert c.tau == 4.0
    beta = c.update(torch.tensor([0.0, 1.0, 2.0, 10.0]))
    assert c.tau == 4.0
    assert c.p_hat == 0.25
    assert c.u_k == 0.0 and c.s_k == 0.0 and c.fail is False
    assert beta == 0.3


def test_risk_clipping():
    """W = 1, δ = 0.1, λ = 0, α = 1. Warm-up [0, 1] ⇒ τ₀ = 0 + 0.9·(1 − 0) = 0.9 (frozen).

    Upper: β₀ = 0.1, β_max = 0.15, γ = 10. Update [1, 1]: p̂ = 1, u = 0.9/sqrt(0.09/2) ≈ 4.2426,
      s = tanh(42.4) ≈ 1 ⇒ 0.1·e ≈ 0.2718 > 0.15 ⇒ β = 0.15; again ⇒ still 0.15.
      Then [0, 0]: p̂ = 0, u = −0.1/0.212132 ≈ −0.471405, s = tanh(−4.71405) ≈ −0.99984
      ⇒ β = 0.15·exp(−0.99984) ≈ 0.0551908 (leaves the bound freely).
    Lower: β₀ = β_min = 0.05, γ = 1. Update [0, 0]: s = tanh(−0.471405) ≈ −0.439333
      ⇒ 0.05·exp(−0.439333) ≈ 0.0322233 < 0.05 ⇒ β = 0.05.
    """
    c = _risk(ema_lambda=0.0, alpha=1.0, gamma=10.0, beta0=0.1, beta_max=0.15)
    c.update([0.0, 1.0])
    assert c.tau == pytest.approx(0.9, abs=1e-12)
    assert c.update([1.0, 1.0]) == 0.15
    assert c.update([1.0, 1.0]) == 0.15
    assert c.update([0.0, 0.0]) == pytest.approx(0.0551908, abs=1e-7)

    c = _risk(ema_lambda=0.0, alpha=1.0, gamma=1.0, beta0=0.05, beta_min=0.05)
    c.update([0.0, 1.0])
    assert c.update([0.0, 0.0]) == 0.05
    assert c.s_k == pytest.approx(-0.439333, abs=1e-6)


def _risk_trace(c, batches):
    out = []
    for m in batches:
        c.update(m)
        out.append(
            (c.beta, c.tau, c.p_hat, c.u_k, c.s_k, c.fail, c.count, c.warmed_up, tuple(c.buffer))
        )
    return out


def _risk_batches():
    g = torch.Generator().manual_seed(0)
    batches = []
    for i in range(12):
        m = torch.randn(8, generator=g) + 0.3 * i  # drifting margins: β moves up and down
        if i % 4 == 3:
            m[:3] = 0.0  # ties
        batches.append(m.to(torch.float32))
    return batches


@pytest.mark.parametrize("k", list(range(0, 13)))
def test_risk_state_roundtrip_bit_identical(k):
    """Save after k updates (through JSON), restore into a fresh object, continue: every value of
    every later update equals the uninterrupted run exactly (warm-up W = 3 covers a save inside the
    warm-up, at its last update and after it)."""
    kw = dict(delta=0.2, ema_lambda=0.3, warmup=3, beta0=0.1, alpha=0.05, gamma=2.0, beta_min=0.01, beta_max=1.0)
    batches = _risk_batches()
    full = _risk_trace(RiskBetaController(**kw), batches)

    a = RiskBetaController(**kw)
    first = _risk_trace(a, batches[:k])
    state = _json_roundtrip(a.state_dict())
    b = RiskBetaController(**kw)
    b.load_state_dict(state)
    assert b.state_dict() == a.state_dict()
    rest = _risk_trace(b, batches[k:])
    assert first + rest == full
    assert len({t[0] for t in full}) > 3  # β really moved


def test_risk_load_rejects_other_hyperparameters():
    a = _risk()
    a.update([1.0, 2.0])
    b = _risk(alpha=0.25)
    with pytest.raises(ValueError):
        b.load_state_dict(_json_roundtrip(a.state_dict()))
    b.load_state_dict(_json_roundtrip(a.state_dict()), strict=False)
    assert b.tau == a.tau
    with pytest.raises(ValueError):
        b.load_state_dict({"kind": "beta_dpo"})


@pytest.mark.parametrize(
    "bad",
    [
        {"delta": 0.0},
        {"delta": 1.0},
        {"delta": float("nan")},
        {"ema_lambda": -0.1},
        {"ema_lambda": 1.5},
        {"warmup": 0},
        {"warmup": -1},
        {"warmup": 2.5},
        {"warmup": True},
        {"beta_min": -0.1},
        {"beta_min": 0.2},  # > beta0
        {"beta_max": 0.05},  # < beta0
        {"beta_max": float("inf")},
        {"alpha": -1.0},
        {"gamma": -1.0},
        {"beta0": "0.1"},
    ],
)
def test_risk_invalid_hyperparameters(bad):
    with pytest.raises(ValueError):
        _risk(**bad)


def test_risk_input_validation_and_dtypes():
    """Empty, non-finite and 2-D inputs raise; lists and float32/bf16 tensors are accepted and the
    statistics are float64 (a float32 margin converts exactly: τ₀ of [0.1f] is float(0.1f))."""
    c = _risk()
    for bad in ([], torch.tensor([1.0, float("nan")]), torch.tensor([float("inf")]), torch.zeros(2, 2)):
        with pytest.raises(ValueError):
            c.update(bad)
    assert c.count == 0
    x = torch.tensor([0.1], dtype=torch.float32, requires_grad=True)
    c.update(x)
    assert isinstance(c.tau, float)
    assert c.tau == float(torch.tensor(0.1, dtype=torch.float32).item())
    c.update(torch.tensor([0.5, 1.5], dtype=torch.bfloat16))
    assert isinstance(c.beta, float) and isinstance(c.p_hat, float)


# --- BetaDPOController ---------------------------------------------------------------------------


def _bdpo(**kw):
    params = dict(beta0=0.1, alpha=0.5, momentum=0.9, keep_ratio=0.5, min_beta=1e-3, eps=1e-6)
    params.update(kw)
    return BetaDPOController(**params)


@pytest.mark.parametrize(
    "B, keep, k",
    [
        (16, 0.8, 12),  # floor(12.8) = 12
        (3, 0.1, 1),  # floor(0.3) = 0 ⇒ max(1, 0) = 1
        (100, 0.29, 29),  # 100·0.29 = 28.999999999999996 in binary; rounded to 9 decimals ⇒ 29
        (5, 1.0, 5),  # keep everything
        (8, 0.75, 6),  # e.g. 2 ranks × 4 gathered gaps: floor(6.0) = 6
    ],
)
def test_beta_dpo_k_rounding(B, keep, k):
    c = _bdpo(keep_ratio=keep)
    assert c.num_kept(B) == k
    mask, _ = c.step(torch.arange(B, dtype=torch.float32), torch.Generator().manual_seed(0))
    assert mask.shape == (B,) and mask.dtype == torch.float32
    assert set(mask.tolist()) <= {0.0, 1.0}
    assert int(mask.sum().item()) == k
    assert c.last["k"] == k and c.last["keep_ratio"] == k / B


def test_beta_dpo_first_batch_and_ema_statistics():
    """First batch [1, 2, 3, 4]: μ = 10/4 = 2.5; deviations ±0.5, ±1.5, squares 0.25, 0.25, 2.25,
    2.25, sum 5, /4 = 1.25 ⇒ σ = sqrt(1.25) ≈ 1.118034 (population std) ⇒ M0 = 2.5, σ = 1.118034.
    Second batch [0, 0, 0, 0], m = 0.9: μ_b = 0, std 0 ⇒ σ_b = max(0, 1e-6) = 1e-6;
    M0 = 0.9·2.5 + 0.1·0 = 2.25; σ = max(0.9·1.118034 + 0.1·1e-6, 1e-6) ≈ 1.0062306 + 0.0000001
    = 1.0062307.
    """
    c = _bdpo()
    assert c.M0 is None and c.sigma is None
    c.update(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert c.M0 == 2.5
    assert c.sigma == pytest.approx(math.sqrt(1.25), rel=1e-15)
    c.update([0.0, 0.0, 0.0, 0.0])
    assert c.M0 == pytest.approx(2.25, abs=1e-15)
    assert c.sigma == pytest.approx(0.9 * math.sqrt(1.25) + 0.1 * 1e-6, rel=1e-15)
    assert c.sigma == pytest.approx(1.0062307, abs=1e-7)
    assert c.count == 2


def test_beta_dpo_sigma_floor():
    """m = 0: a constant first batch [5, 5] gives σ = max(0, eps) = eps; a constant later batch
    gives σ = max(0·σ + 1·eps, eps) = eps; M0 follows the batch mean exactly (m = 0)."""
    c = _bdpo(momentum=0.0, eps=1e-4)
    c.update([5.0, 5.0])
    assert c.M0 == 5.0 and c.sigma == 1e-4
    c.update([1.0, 3.0])
    assert c.M0 == 2.0 and c.sigma == 1.0
    c.update([7.0, 7.0])
    assert c.M0 == 7.0 and c.sigma == 1e-4


def test_beta_dpo_selection_is_gaussian_weighted_and_deterministic():
    """Gaps [−1, 0, 1, 2]: M0 = 0.5, σ = sqrt(1.25) (see the moments test) ⇒
    z = [−1.5, −0.5, 0.5, 1.5]/(sqrt(1.25) + 1e-6), z² ≈ [1.8, 0.2, 0.2, 1.8]
    ⇒ w = exp(−z²/2) ≈ [e^−0.9, e^−0.1, e^−0.1, e^−0.9] ≈ [0.40657, 0.90484, 0.90484, 0.40657];
    k = floor(4·0.5) = 2. With a seeded generator the selection equals
    torch.multinomial(w, 2, replacement=False) on those hand weights with the same seed, and
    β_used = max(1e-3, 0.1·(1 + 0.5·(mean(g[kept]) − 0.5))).
    Over many seeds the two central gaps are kept more often than the two outer ones.
    """
    gaps = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    sd = math.sqrt(1.25) + 1e-6
    w = torch.tensor([math.exp(-0.5 * ((g - 0.5) / sd) ** 2) for g in gaps.tolist()], dtype=torch.float64)
    assert w.tolist() == pytest.approx([0.40657, 0.90484, 0.90484, 0.40657], abs=1e-5)

    for seed in (0, 1, 123):
        c = _bdpo()
        mask, beta_used = c.step(gaps, torch.Generator().manual_seed(seed))
        idx = torch.multinomial(w, 2, replacement=False, generator=torch.Generator().manual_seed(seed))
        expected = torch.zeros(4)
        expected[idx] = 1.0
        assert torch.equal(mask, expected)
        kept = [g for g, m in zip(gaps.tolist(), mask.tolist()) if m == 1.0]
        assert beta_used == pytest.approx(max(1e-3, 0.1 * (1 + 0.5 * (sum(kept) / 2 - 0.5))), rel=1e-12)
        # same seed, same answer
        c2 = _bdpo()
        mask2, beta2 = c2.step(gaps, torch.Generator().manual_seed(seed))
        assert torch.equal(mask, mask2) and beta_used == beta2

    counts = torch.zeros(4)
    gen = torch.Generator().manual_seed(42)
    c = _bdpo()
    c.update(gaps)
    for _ in range(2000):
        mask, _ = c.select(gaps, gen)
        counts += mask
    assert counts[1] > counts[0] + 200 and counts[2] > counts[3] + 200


def test_beta_dpo_uniform_fallback_and_no_upper_clamp():
    """update([0, 0]) ⇒ M0 = 0, σ = eps = 1e-6. Gaps [1000, 2000, 3000, 4000]:
    z ≥ 1000/2e-6 = 5e8 ⇒ z²/2 ≥ 1.25e17 ⇒ every w underflows to 0 ⇒ Σw = 0 ⇒ uniform weights:
    the selection equals torch.multinomial(ones(4), 2, replacement=False) with the same seed.
    β_used = 0.1·(1 + 0.5·(mean(kept) − 0)) ≥ 0.1·(1 + 0.5·1500) = 75.1 — returned unclamped.
    """
    gaps = [1000.0, 2000.0, 3000.0, 4000.0]
    for seed in range(5):
        c = _bdpo()
        c.update([0.0, 0.0])
        mask, beta_used = c.select(gaps, torch.Generator().manual_seed(seed))
        idx = torch.multinomial(
            torch.ones(4, dtype=torch.float64), 2, replacement=False, generator=torch.Generator().manual_seed(seed)
        )
        expected = torch.zeros(4)
        expected[idx] = 1.0
        assert torch.equal(mask, expected)
        kept_mean = sum(g for g, m in zip(gaps, mask.tolist()) if m) / 2
        assert beta_used == pytest.approx(0.1 * (1 + 0.5 * kept_mean), rel=1e-12)
        assert beta_used >= 75.1
        assert c.M0 == 0.0 and c.sigma == 1e-6  # select does not touch the statistics


def test_beta_dpo_partial_underflow_keeps_all_positive_weights():
    """M0 = 0, σ = 1e-6; gaps [0, 0, 1000, 2000], keep 0.75 ⇒ k = floor(3.0) = 3; w = [1, 1, 0, 0]:
    only 2 positive weights < k, so both are kept and the third is drawn uniformly from {2, 3}."""
    seen = set()
    for seed in range(40):
        c = _bdpo(keep_ratio=0.75)
        c.update([0.0, 0.0])
        mask, _ = c.select([0.0, 0.0, 1000.0, 2000.0], torch.Generator().manual_seed(seed))
        assert mask[0] == 1.0 and mask[1] == 1.0 and mask.sum() == 3.0
        seen.add(2 if mask[2] == 1.0 else 3)
    assert seen == {2, 3}


def test_beta_dpo_beta_used_and_min_clamp():
    """keep_ratio 1 (all kept), m = 0.5, β₀ = 0.1.

    α = 0.5: step [1, 3] ⇒ M0 = 2, σ = 1, kept mean 2 ⇒ β_used = 0.1·(1 + 0.5·0) = 0.1.
             step [5, 7] ⇒ μ_b = 6, σ_b = 1 ⇒ M0 = 0.5·2 + 0.5·6 = 4, σ = 0.5·1 + 0.5·1 = 1;
             kept mean 6 ⇒ β_used = 0.1·(1 + 0.5·(6 − 4)) = 0.2.
    α = 1:   step [5, 7] ⇒ M0 = 6; step [1, 3] ⇒ M0 = 0.5·6 + 0.5·2 = 4, kept mean 2
             ⇒ 0.1·(1 + 1·(2 − 4)) = −0.1 ⇒ max(1e-3, −0.1) = 1e-3.
    α = 10:  as the first case ⇒ 0.1·(1 + 10·2) = 2.1 (no upper clamp).
    Evaluate (α = 0.5 controller, M0 = 4): all-ones mask, mean([0, 8]) = 4
             ⇒ β_used = 0.1·(1 + 0.5·(4 − 4)) = 0.1; M0, σ unchanged.
    """
    c = _bdpo(keep_ratio=1.0, momentum=0.5, alpha=0.5)
    gen = torch.Generator().manual_seed(0)
    assert c.step([1.0, 3.0], gen)[1] == pytest.approx(0.1, abs=1e-15)
    mask, beta_used = c.step([5.0, 7.0], gen)
    assert c.M0 == 4.0 and c.sigma == 1.0
    assert torch.equal(mask, torch.ones(2))
    assert beta_used == pytest.approx(0.2, abs=1e-15)
    assert c.last["gap_selected_mean"] == 6.0 and c.last["beta_used"] == beta_used

    last = dict(c.last)
    eval_mask, eval_beta = c.evaluate(torch.tensor([0.0, 8.0]))
    assert torch.equal(eval_mask, torch.ones(2))
    assert eval_beta == pytest.approx(0.1, abs=1e-15)
    assert c.M0 == 4.0 and c.sigma == 1.0 and c.count == 2 and c.last == last

    c = _bdpo(keep_ratio=1.0, momentum=0.5, alpha=1.0)
    c.step([5.0, 7.0], gen)
    assert c.step([1.0, 3.0], gen)[1] == 1e-3

    c = _bdpo(keep_ratio=1.0, momentum=0.5, alpha=10.0)
    c.step([1.0, 3.0], gen)
    assert c.step([5.0, 7.0], gen)[1] == pytest.approx(2.1, rel=1e-12)


def test_beta_dpo_evaluate_before_training_and_select_before_update():
    """No statistics yet: evaluate gives β_used = max(min_beta, β₀) = 0.1; select raises."""
    c = _bdpo()
    mask, beta_used = c.evaluate([1.0, 2.0, 3.0])
    assert torch.equal(mask, torch.ones(3)) and beta_used == 0.1
    assert c.M0 is None
    with pytest.raises(RuntimeError):
        c.select([1.0, 2.0], torch.Generator().manual_seed(0))


def test_beta_dpo_step_is_update_then_select():
    g = torch.tensor([0.3, -1.2, 2.5, 0.0, 1.1, -0.4])
    a, b = _bdpo(), _bdpo()
    a.step(torch.tensor([1.0, 2.0]), torch.Generator().manual_seed(9))
    b.update(torch.tensor([1.0, 2.0]))
    ma, ba = a.step(g, torch.Generator().manual_seed(3))
    b.update(g)
    mb, bb = b.select(g, torch.Generator().manual_seed(3))
    assert torch.equal(ma, mb) and ba == bb and a.M0 == b.M0 and a.sigma == b.sigma


def test_beta_dpo_gathered_gaps_from_two_ranks():
    """Rank 0 selects over the concatenation of both ranks' gaps (B = 2 × 4 = 8, keep 0.75 ⇒ k = 6);
    each rank then slices its half of the broadcast mask."""
    rank_gaps = [torch.tensor([0.1, 0.2, -0.3, 1.0]), torch.tensor([0.5, -2.0, 0.0, 0.7])]
    c = _bdpo(keep_ratio=0.75)
    mask, beta_used = c.step(torch.cat(rank_gaps), torch.Generator().manual_seed(0))
    assert mask.shape == (8,) and mask.sum() == 6.0
    assert mask[0:4].sum() + mask[4:8].sum() == 6.0
    assert isinstance(beta_used, float)


@pytest.mark.parametrize("k", [0, 1, 4, 8])
def test_beta_dpo_state_roundtrip_bit_identical(k):
    """Save controller state (JSON) and the generator state after k steps, restore both, continue:
    masks, β_used, M0 and σ equal the uninterrupted run exactly."""
    g = torch.Generator().manual_seed(5)
    batches = [(torch.randn(10, generator=g) * (1 + i) + 0.2 * i).float() for i in range(8)]

    def trace(c, gen, bs):
        out = []
        for x in bs:
            mask, beta_used = c.step(x, gen)
            out.append((mask.tolist(), beta_used, c.M0, c.sigma, c.count))
        return out

    full = trace(_bdpo(keep_ratio=0.6), torch.Generator().manual_seed(11), batches)
    a, gen = _bdpo(keep_ratio=0.6), torch.Generator().manual_seed(11)
    first = trace(a, gen, batches[:k])
    state = _json_roundtrip(a.state_dict())
    b = _bdpo(keep_ratio=0.6)
    b.load_state_dict(state)
    gen2 = torch.Generator()
    gen2.set_state(gen.get_state())
    assert b.state_dict() == a.state_dict()
    assert first + trace(b, gen2, batches[k:]) == full


@pytest.mark.parametrize(
    "bad",
    [
        {"beta0": 0.0},
        {"beta0": -0.1},
        {"alpha": -0.5},
        {"alpha": float("nan")},
        {"momentum": 1.0},
        {"momentum": -0.1},
        {"keep_ratio": 0.0},
        {"keep_ratio": 1.01},
        {"min_beta": 0.0},
        {"eps": 0.0},
        {"eps": -1e-6},
    ],
)
def test_beta_dpo_invalid_hyperparameters(bad):
    with pytest.raises(ValueError):
        _bdpo(**bad)


def test_beta_dpo_input_validation():
    c = _bdpo()
    for bad in ([], torch.tensor([float("nan"), 1.0]), torch.zeros(2, 3)):
        with pytest.raises(ValueError):
            c.update(bad)
    assert c.M0 is None and c.count == 0
