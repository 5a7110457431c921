"""Tests for dpo_sweep_worker.losses (seed-spec §1.1, §1.3 step 5; Rafailov et al. 2023 eq. 7).

Every expected number is derived by hand in the docstrings from the equations, not copied from a
run of the code.
"""

import math

import pytest
import torch

from dpo_sweep_worker.losses import dpo_loss, masked_dpo_loss, sequence_logps

LN2 = math.log(2.0)
LN3 = math.log(3.0)


def _tiny_batch():
    """B=2, L=4, V=3 with logits whose log-softmax is simple.

    Row 0, labels [-100, 1, 2, -100]:
      t=1: label 1, predicted by logits[0,0] = [0, ln2, 0] → softmax [1/4, 2/4, 1/4] → ln(1/2)
      t=2: label 2, predicted by logits[0,1] = [0, 0, 0]   → softmax [1/3, 1/3, 1/3] → ln(1/3)
      t=3: label -100 → ignored (logits[0,2] unused); logits[0,3] is never used (no t=4).
      logp(0) = ln(1/2) + ln(1/3) = −ln 6.
    Row 1, labels [0, -100, 0, 0]:
      labels[1,0] is never a target (nothing predicts position 0).
      t=1: -100 → ignored (logits[1,0] unused).
      t=2: label 0, predicted by logits[1,1] = [ln2, 0, 0] → softmax [2/4, 1/4, 1/4] → ln(1/2)
      t=3: label 0, predicted by logits[1,2] = [0, ln3, 0] → softmax [1/5, 3/5, 1/5] → ln(1/5)
      logp(1) = ln(1/2) + ln(1/5) = −ln 10.
    The unused positions hold large junk values, which must not change anything.
    """
    junk = [50.0, -20.0, 7.0]
    logits = torch.tensor(
        [
            [[0.0, LN2, 0.0], [0.0, 0.0, 0.0], junk, junk],
            [junk, [LN2, 0.0, 0.0], [0.0, LN3, 0.0], junk],
        ],
        dtype=torch.float32,
    )
    labels = torch.tensor([[-100, 1, 2, -100], [0, -100, 0, 0]])
    return logits, labels


def test_sequence_logps_hand_example():
    """logp = [−ln 6, −ln 10] (see _tiny_batch)."""
    logits, labels = _tiny_batch()
    out = sequence_logps(logits, labels)
    assert out.shape == (2,)
    assert out.dtype == torch.float32
    assert out[0].item() == pytest.approx(-math.log(6.0), abs=1e-6)
    assert out[1].item() == pytest.approx(-math.log(10.0), abs=1e-6)


def test_sequence_logps_shift_and_masking():
    """Only logits[:, t-1] for scored labels t matter.

    Changing logits at ignored / never-used positions (row 0: positions 2 and 3; row 1: positions 0
    and 3) leaves the result unchanged. Setting the used logits[0,0] to [0, 0, 0] turns row 0's t=1
    term from ln(1/2) into ln(1/3), so logp(0) = 2·ln(1/3). Un-masking row 0's t=3 with label 1
    (predicted by logits[0,2] = [50, −20, 7]) adds
    log_softmax([50, −20, 7])[1] = −20 − log(e^50 + e^−20 + e^7) = −70 − log(1 + e^−70 + e^−43).
    """
    logits, labels = _tiny_batch()
    base = sequence_logps(logits, labels)

    changed = logits.clone()
    changed[0, 2] = torch.tensor([-3.0, 9.0, 1.0])
    changed[0, 3] = torch.tensor([4.0, 4.0, -4.0])
    changed[1, 0] = torch.tensor([1.0, 2.0, 3.0])
    changed[1, 3] = torch.tensor([0.5, -0.5, 0.0])
    assert torch.equal(sequence_logps(changed, labels), base)

    used = logits.clone()
    used[0, 0] = torch.tensor([0.0, 0.0, 0.0])  # t=1 term becomes ln(1/3) instead of ln(1/2)
    out = sequence_logps(used, labels)
    assert out[0].item() == pytest.approx(2 * math.log(1 / 3), abs=1e-6)
    assert out[1].item() == pytest.approx(base[1].item(), abs=0)

    labels2 = labels.clone()
    labels2[0, 3] = 1
    out2 = sequence_logps(logits, labels2)
    expected = -math.log(6.0) + (-20.0 - (50.0 + math.log1p(math.exp(-70.0) + math.exp(-43.0))))
    assert out2[0].item() == pytest.approx(expected, rel=1e-6)


def test_sequence_logps_all_masked_row_is_zero():
    """A row whose labels are all -100 sums over no positions: exactly 0."""
    logits, labels = _tiny_batch()
    labels[1] = -100
    out = sequence_logps(logits, labels)
    assert out[1].item() == 0.0


def test_sequence_logps_matches_manual_loop():
    """Random logits: compare with a per-token loop of log(exp(z_y) / Σ_v exp(z_v))."""
    g = torch.Generator().manual_seed(0)
    B, L, V = 3, 6, 5
    logits = torch.randn(B, L, V, generator=g, dtype=torch.float64)
    labels = torch.randint(0, V, (B, L), generator=g)
    labels[0, :3] = -100  # "prompt"
    labels[2, 4:] = -100  # "padding"
    expected = []
    for b in range(B):
        total = 0.0
        for t in range(1, L):
            y = int(labels[b, t])
            if y == -100:
                continue
            row = [float(v) for v in logits[b, t - 1]]
            total += row[y] - math.log(sum(math.exp(v) for v in row))
        expected.append(total)
    out = sequence_logps(logits, labels)
    assert out.dtype == torch.float64
    for b in range(B):
        assert out[b].item() == pytest.approx(expected[b], abs=1e-10)
    out32 = sequence_logps(logits.float(), labels)
    assert out32.dtype == torch.float32
    for b in range(B):
        assert out32[b].item() == pytest.approx(expected[b], abs=1e-4)


def test_sequence_logps_bf16_upcast_and_grad():
    """bf16 logits are upcast: the result is float32 and equals the float32 computation on the
    bf16-rounded logits; gradients flow back to the logits, zero at unused positions."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 7, generator=g).to(torch.bfloat16).requires_grad_(True)
    labels = torch.randint(0, 7, (2, 5), generator=g)
    labels[:, :2] = -100
    out = sequence_logps(logits, labels)
    assert out.dtype == torch.float32
    ref = sequence_logps(logits.detach().float(), labels)
    assert torch.allclose(out.detach(), ref, atol=1e-6)
    out.sum().backward()
    assert logits.grad is not None
    assert torch.all(logits.grad[:, -1] == 0)  # the last logit predicts nothing
    assert torch.all(logits.grad[:, 0] == 0)  # predicts labels[:, 1] = -100


def test_sequence_logps_shape_errors():
    logits, labels = _tiny_batch()
    with pytest.raises(ValueError):
        sequence_logps(logits[0], labels)
    with pytest.raises(ValueError):
        sequence_logps(logits, labels[:, :3])


def test_dpo_loss_ln2_when_policy_equals_reference():
    """πc = rc and πr = rr ⇒ h = 0 ⇒ loss = −log σ(0) = −log(1/2) = ln 2, rewards 0."""
    pc = torch.tensor([-5.0, -12.5, -1.0])
    pr = torch.tensor([-7.0, -3.0, -0.5])
    losses, cr, rr = dpo_loss(pc, pr, pc.clone(), pr.clone(), 0.1)
    assert torch.allclose(losses, torch.full((3,), LN2))
    assert torch.all(cr == 0) and torch.all(rr == 0)


def test_dpo_loss_against_log1p_exp():
    """−log σ(x) = log(1 + e^(−x)) with x = β·h.

    β = 0.5:
      ex. 0: πc=−1, rc=−2 (Δc = 1), πr=−3, rr=−2 (Δr = −1) ⇒ h = 2, βh = 1 ⇒ loss = log1p(e^−1);
             rewards β·Δc = 0.5, β·Δr = −0.5
      ex. 1: πc=−4, rc=−3 (Δc = −1), πr=−2, rr=−3 (Δr = 1) ⇒ h = −2, βh = −1 ⇒ loss = log1p(e^1);
             rewards −0.5, 0.5
      ex. 2: πc=−2, rc=−2.5 (Δc = 0.5), πr=−1, rr=−1 (Δr = 0) ⇒ h = 0.5, βh = 0.25
             ⇒ loss = log1p(e^−0.25); rewards 0.25, 0
    """
    pc = torch.tensor([-1.0, -4.0, -2.0], requires_grad=True)
    pr = torch.tensor([-3.0, -2.0, -1.0], requires_grad=True)
    rc = torch.tensor([-2.0, -3.0, -2.5])
    rr = torch.tensor([-2.0, -3.0, -1.0])
    for beta in (0.5, torch.tensor(0.5)):
        losses, cr, rj = dpo_loss(pc, pr, rc, rr, beta)
        expected = [math.log1p(math.exp(-1.0)), math.log1p(math.exp(1.0)), math.log1p(math.exp(-0.25))]
        assert losses.tolist() == pytest.approx(expected, abs=1e-6)
        assert cr.tolist() == pytest.approx([0.5, -0.5, 0.25], abs=1e-7)
        assert rj.tolist() == pytest.approx([-0.5, 0.5, 0.0], abs=1e-7)
        assert not cr.requires_grad and not rj.requires_grad
        assert losses.requires_grad


def test_dpo_loss_gradient_and_stability():
    """d/dπc [−log σ(βh)] = −β·σ(−βh). With β = 1, h = 0: −0.5. With h = −1000 the loss is
    −log σ(−1000) = 1000 + log1p(e^−1000) = 1000 (no overflow)."""
    pc = torch.tensor([0.0, -1000.0], requires_grad=True)
    zeros = torch.zeros(2)
    losses, _, _ = dpo_loss(pc, zeros, zeros, zeros, 1.0)
    assert losses[1].item() == pytest.approx(1000.0)
    assert math.isfinite(losses[1].item())
    losses.sum().backward()
    assert pc.grad[0].item() == pytest.approx(-0.5)
    assert pc.grad[1].item() == pytest.approx(-1.0)


def test_dpo_loss_bad_beta_and_shapes():
    t = torch.zeros(2)
    with pytest.raises(ValueError):
        dpo_loss(t, t, t, t, torch.tensor([0.1, 0.2]))
    with pytest.raises(TypeError):
        dpo_loss(t, t, t, t, "0.1")
    with pytest.raises(ValueError):
        dpo_loss(t, torch.zeros(3), t, t, 0.1)


def test_masked_dpo_loss():
    """ℓ = [1, 2, 3, 4], mask = [1, 0, 1, 0]:
      Σ mask·ℓ = 1 + 3 = 4, Σ mask = 2 ⇒ 4/2 = 2
      normaliser 4 (global kept count) ⇒ 4/4 = 1; normaliser 0 ⇒ 4/max(0, 1) = 4
      mask all zero ⇒ 0/max(0, 1) = 0
      gradient: d loss/d ℓ_i = mask_i / 2 = [0.5, 0, 0.5, 0]."""
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
    out = masked_dpo_loss(losses, mask)
    assert out.item() == pytest.approx(2.0)
    out.backward()
    assert losses.grad.tolist() == [0.5, 0.0, 0.5, 0.0]
    assert masked_dpo_loss(losses, mask, normaliser=4).item() == pytest.approx(1.0)
    assert masked_dpo_loss(losses, mask, normaliser=torch.tensor(4.0)).item() == pytest.approx(1.0)
    assert masked_dpo_loss(losses, mask, normaliser=0).item() == pytest.approx(4.0)
    assert masked_dpo_loss(losses, torch.zeros(4)).item() == 0.0
    assert masked_dpo_loss(losses, mask.bool()).item() == pytest.approx(2.0)
    with pytest.raises(ValueError):
        masked_dpo_loss(losses, torch.ones(3))
