"""Hand-checked values and gradients of the CreFlow losses, advantages and latent masks."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from creflow_train.advantages import aggregate_group_masks, group_advantages  # noqa: E402
from creflow_train.losses import (  # noqa: E402
    corrective_reflow_loss,
    corrective_targets,
    credit_nft_loss,
    ema_update_,
    kl_anchor_loss,
    nft_loss,
    old_policy_decay,
    optimality_probability,
    outside_anchor_loss,
    rf_interpolate,
    rf_velocity,
)
from creflow_train.masks import latent_frames, pixel_to_latent_mask  # noqa: E402


def T(x):
    return torch.tensor(x, dtype=torch.float64)


# Two rollouts of two elements each. v = ε − x0 = [[-1, 1], [1, -2]]; A = [5, -2.5], C = 5 → r = [1, 0.25];
# β = 0.5, v_old = 0: v⁺ = 0.5·v_θ = [[-0.5, 0], [1, -1]], v⁻ = −0.5·v_θ = [[0.5, 0], [-1, 1]].
X0 = [[1.0, 0.0], [0.0, 2.0]]
EPS = [[0.0, 1.0], [1.0, 0.0]]
V_THETA = [[-1.0, 0.0], [2.0, -2.0]]
ADV = [5.0, -2.5]
K = 5.0 / 0.5  # DiffusionNFT's C/β factor at C = 5, β = 0.5


def _nft_inputs(t=(0.5, 1.0)):
    v_theta = T(V_THETA).requires_grad_(True)
    return v_theta, torch.zeros(2, 2, dtype=torch.float64), T(X0), T(EPS), T(list(t)), T(ADV)


def test_rectified_flow_interpolant_and_velocity():
    x0, eps, t = T([[2.0, 0.0]]), T([[0.0, 4.0]]), T([0.25])
    assert rf_interpolate(x0, eps, t).tolist() == [[1.5, 1.0]]  # 0.75·x0 + 0.25·ε
    assert rf_velocity(x0, eps).tolist() == [[-2.0, 4.0]]


def test_optimality_probability_clips_and_adv_modes():
    a = T([-10.0, -5.0, -2.5, 0.0, 2.5, 7.0])
    assert optimality_probability(a, clip=5.0).tolist() == [0, 0, 0.25, 0.5, 0.75, 1]
    # DiffusionNFT's train.adv_mode variants, applied to clip(A, −C, C) before r = ½ + ½·Â/C
    assert optimality_probability(a, 5.0, "positive_only").tolist() == [0.5, 0.5, 0.5, 0.5, 0.75, 1]
    assert optimality_probability(a, 5.0, "negative_only").tolist() == [0, 0, 0.25, 0.5, 0.5, 0.5]
    assert optimality_probability(a, 5.0, "one_only").tolist() == [0.5, 0.5, 0.5, 0.5, 0.6, 0.6]
    assert optimality_probability(a, 5.0, "binary").tolist() == [0.4, 0.4, 0.4, 0.5, 0.6, 0.6]
    with pytest.raises(ValueError, match="binary"):
        optimality_probability(a, 5.0, "sign")


def test_nft_loss_plain_value_and_gradient():
    v_theta, v_old, x0, eps, t, adv = _nft_inputs()
    loss, terms = nft_loss(v_theta, v_old, x0, eps, t, adv, beta=0.5, adaptive=False)
    # sample 0: v⁺−v = [0.5, −1] → mean sq 0.625; r = 1 → 0.625
    # sample 1: v⁺−v = [0, 1] → 0.5; v⁻−v = [−2, 3] → 6.5; 0.25·0.5 + 0.75·6.5 = 5.0
    assert loss.item() == pytest.approx(K * (0.625 + 5.0) / 2)
    assert terms["nft_r_mean"] == pytest.approx(0.625)
    loss.backward()
    # ∂/∂v_θ = C/β·[r·2(v⁺−v)·β + (1−r)·2(v⁻−v)·(−β)] / 2 elements / 2 samples
    s0 = [1 * 2 * 0.5 * 0.5 / 4, 1 * 2 * -1 * 0.5 / 4]
    s1 = [(0.25 * 2 * 0 * 0.5 + 0.75 * 2 * -2 * -0.5) / 4, (0.25 * 2 * 1 * 0.5 + 0.75 * 2 * 3 * -0.5) / 4]
    assert v_theta.grad.flatten().tolist() == pytest.approx([K * g for g in s0 + s1])
    assert s0 + s1 == pytest.approx([0.125, -0.25, 0.375, -0.5])


def test_nft_loss_adaptive_x0_weighting():
    v_theta, v_old, x0, eps, t, adv = _nft_inputs(t=(0.5, 1.0))
    loss, terms = nft_loss(v_theta, v_old, x0, eps, t, adv, beta=0.5, adaptive=True)
    # x̂0± − x0 = t·(v − v±). sample 0 (t=.5): e⁺ = [−0.25, 0.5], mean|e⁺| = 0.375, mean e⁺² = 0.15625
    l0 = 1.0 * (0.15625 / 0.375)
    # sample 1 (t=1): e⁺ = [0, −1] → 0.5 / 0.5 = 1; e⁻ = [2, −3] → 6.5 / 2.5 = 2.6
    l1 = 0.25 * 1.0 + 0.75 * 2.6
    assert loss.item() == pytest.approx(K * (l0 + l1) / 2)
    assert terms["nft_x0_weight_pos"] == pytest.approx((0.375 + 0.5) / 2)
    # the weight is stop-gradient: sample 0's gradient is C/β·r·2·e⁺·(−t·β)/w⁺/2 elements/2 samples
    loss.backward()
    g00 = K * 2 * -0.25 * (-0.5 * 0.5) / 0.375 / 4
    assert v_theta.grad[0, 0].item() == pytest.approx(g00)


def test_nft_loss_beta_one_negative_branch_ignores_v_old_mix():
    # β = 1: v⁺ = v_θ and v⁻ = 2·v_old − v_θ; with A = −C (r = 0) only the negative branch counts.
    v_theta = T([[1.0, 1.0]]).requires_grad_(True)
    v_old, x0, eps = T([[1.0, 0.0]]), T([[0.0, 0.0]]), T([[0.0, 0.0]])
    loss, _ = nft_loss(v_theta, v_old, x0, eps, T([0.5]), T([-5.0]), beta=1.0, adaptive=False)
    # v⁻ = [1, −1], v = 0 → mean sq = 1, × C/β = 5
    assert loss.item() == pytest.approx(5.0)


def test_credit_nft_gradient_zero_outside_mask():
    v_theta, v_old, x0, eps, t, adv = _nft_inputs()
    mask = T([[1.0, 0.0], [0.0, 1.0]])
    loss, terms = credit_nft_loss(v_theta, v_old, x0, eps, t, adv, mask, beta=0.5, adaptive=False)
    # sample 0 keeps element 0: (v⁺−v)² = 0.25, r = 1 → 0.25; sample 1 keeps element 1: 0.25·1 + 0.75·9 = 7
    assert loss.item() == pytest.approx(K * (0.25 + 7.0) / 2)
    assert terms["credit_nft_mask_frac"] == pytest.approx(0.5)
    loss.backward()
    # inside M: normalised by ΣM = 1 per sample, / 2 samples
    g0 = K * 1 * 2 * 0.5 * 0.5 / 2
    g1 = K * (0.25 * 2 * 1 * 0.5 + 0.75 * 2 * 3 * -0.5) / 2
    assert v_theta.grad.flatten().tolist() == pytest.approx([g0, 0.0, 0.0, g1])
    assert v_theta.grad[0, 1].item() == 0.0 and v_theta.grad[1, 0].item() == 0.0  # exactly zero


def test_credit_nft_numel_normalisation():
    v_theta, v_old, x0, eps, t, adv = _nft_inputs()
    mask = T([[1.0, 0.0], [0.0, 1.0]])
    loss, _ = credit_nft_loss(v_theta, v_old, x0, eps, t, adv, mask, beta=0.5, adaptive=False, mask_norm="numel")
    # the same masked sums as above, divided by the 2 elements instead of ΣM = 1: (0.25/2 + 7/2) / 2
    assert loss.item() == pytest.approx(K * (0.25 / 2 + 7.0 / 2) / 2)
    loss.backward()
    assert v_theta.grad[0, 1].item() == 0.0 and v_theta.grad[1, 0].item() == 0.0
    with pytest.raises(ValueError, match="mask, numel"):
        credit_nft_loss(v_theta, v_old, x0, eps, t, adv, mask, mask_norm="sum")


def test_credit_nft_adaptive_gradient_zero_outside_mask():
    v_theta, v_old, x0, eps, t, adv = _nft_inputs()
    mask = T([[1.0, 0.0], [0.0, 1.0]])
    loss, _ = credit_nft_loss(v_theta, v_old, x0, eps, t, adv, mask, beta=0.5, adaptive=True)
    loss.backward()
    assert v_theta.grad[0, 1].item() == 0.0 and v_theta.grad[1, 0].item() == 0.0
    assert v_theta.grad[0, 0].item() != 0.0 and v_theta.grad[1, 1].item() != 0.0


def test_credit_nft_mask_floor_lets_gradient_through():
    v_theta, v_old, x0, eps, t, adv = _nft_inputs()
    mask = T([[1.0, 0.0], [0.0, 1.0]])
    loss, _ = credit_nft_loss(v_theta, v_old, x0, eps, t, adv, mask, beta=0.5, adaptive=False, mask_floor=0.5)
    loss.backward()
    # W = 0.5 + 0.5·M = [[1, .5], [.5, 1]], ΣW = 1.5: sample 0, element 1: r·W·2(v⁺−v)·β / ΣW / 2 samples
    assert v_theta.grad[0, 1].item() == pytest.approx(K * 1 * 0.5 * 2 * -1 * 0.5 / 1.5 / 2)
    # sample 0 value: (1·0.25 + 0.5·1) / 1.5
    v_theta2, v_old, x0, eps, t, adv = _nft_inputs()
    loss0, _ = credit_nft_loss(v_theta2[:1], v_old[:1], x0[:1], eps[:1], t[:1], adv[:1], mask[:1], beta=0.5,
                               adaptive=False, mask_floor=0.5)
    assert loss0.item() == pytest.approx(K * (0.25 + 0.5 * 1.0) / 1.5)


def test_credit_nft_with_full_mask_equals_nft():
    g = torch.Generator().manual_seed(0)
    shape = (3, 2, 4, 5, 5)
    v_theta, v_old, x0, eps = (torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(4))
    t, adv = torch.rand(3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    full = torch.ones(3, 4, 5, 5, dtype=torch.float64)  # channel dim broadcast
    a, _ = nft_loss(v_theta, v_old, x0, eps, t, adv)
    b, _ = credit_nft_loss(v_theta, v_old, x0, eps, t, adv, full)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_corrective_targets_hand_computed():
    x0 = T([[2.0, 4.0], [4.0, 0.0], [1.0, 1.0], [7.0, 7.0], [9.0, 9.0]])
    groups = torch.tensor([0, 0, 0, 1, 1])
    positive = torch.tensor([True, True, False, False, False])  # group 1 has no positives: no reflow
    mask = T([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    ct = corrective_targets(x0, mask, groups, positive)
    assert ct.index.tolist() == [2]
    # mean of positives = [3, 2]; x0* = M⊙[3, 2] + (1−M)⊙[1, 1] = [1, 2]
    assert ct.x0_star.tolist() == [[1.0, 2.0]]
    assert len(ct) == 1


def test_corrective_targets_close_diff_extends_mask_at_blamed_frames():
    # x0 (B=2, C=1, T=2, W=3): rollout 0 positive, rollout 1 negative, one group
    pos = [[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]
    neg = [[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]]  # frame 1: the object sits at x=0 instead of x=2
    x0 = T([pos, neg])
    mask = T([[[0, 0, 0], [0, 0, 1]], [[0, 0, 0], [0, 0, 1]]])  # the witness blames x=2 at frame 1 only
    plain = corrective_targets(x0, mask, torch.tensor([0, 0]), torch.tensor([True, False]))
    # without closing: the object is pasted at x=2 and also stays at x=0 → two objects
    assert plain.x0_star[0, 0, 1].tolist() == [1.0, 0.0, 1.0]
    closed = corrective_targets(x0, mask, torch.tensor([0, 0]), torch.tensor([True, False]), close_diff=0.5)
    # |x̄0⁺ − x0⁻| > 0.5 at x=0 and x=2 of frame 1 joins the mask; frame 0 (not blamed) is untouched
    assert closed.mask[0].tolist() == [[0, 0, 0], [1, 0, 1]]
    assert closed.x0_star[0, 0].tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def test_corrective_reflow_loss_value_and_gradient():
    x0_star, eps, mask = T([[1.0, 2.0]]), T([[0.0, 1.0]]), T([[0.0, 1.0]])
    v_theta = T([[1.0, 1.0]]).requires_grad_(True)
    loss, terms = corrective_reflow_loss(v_theta, x0_star, eps, mask)
    # target = ε − x0* = [−1, −1]; only element 1 is weighted: (1 − (−1))² / ΣM(=1) = 4
    assert loss.item() == pytest.approx(4.0)
    assert terms["reflow_n"] == 1.0
    loss.backward()
    assert v_theta.grad.tolist() == [[0.0, 4.0]]  # 2·(v_θ − target)·M / ΣM
    empty, t0 = corrective_reflow_loss(v_theta[:0], x0_star[:0], eps[:0], mask[:0])
    assert empty.item() == 0.0 and t0["reflow_n"] == 0.0


def test_kl_anchor_value_and_gradient():
    v_theta = T([[1.0, 2.0]]).requires_grad_(True)
    loss, terms = kl_anchor_loss(v_theta, T([[0.0, 0.0]]), weight=0.1)
    assert loss.item() == pytest.approx(0.1 * (1 + 4) / 2)
    assert terms["kl_mse"] == pytest.approx(2.5)
    loss.backward()
    assert v_theta.grad.flatten().tolist() == pytest.approx([0.1, 0.2])  # λ·2·(v_θ − v_ref)/2 elements


def test_outside_anchor_value_and_gradient_only_outside_mask():
    # sample 0: keep = [1, 0, 1] → (1 + 9) / 2 = 5; sample 1: keep = [0, 0, 0] → contributes 0
    v_theta = T([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]).requires_grad_(True)
    mask = T([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    loss, terms = outside_anchor_loss(v_theta, torch.zeros(2, 3, dtype=torch.float64), mask, weight=0.5)
    assert loss.item() == pytest.approx(0.5 * (5 + 0) / 2)
    assert terms["anchor_keep_frac"] == pytest.approx(2 / 6)
    loss.backward()
    # ∂/∂v = λ/B · 2·(v − v_ref)·keep / Σkeep = 0.25·2·[1, 0, 3]/2 for sample 0; zero inside M and for sample 1
    assert v_theta.grad.flatten().tolist() == pytest.approx([0.25, 0.0, 0.75, 0.0, 0.0, 0.0])


def test_old_policy_decay_schedule_and_ema():
    sched = [old_policy_decay(s, flat=10, uprate=0.01, cap=0.3) for s in (0, 5, 10, 20, 100)]
    assert sched == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.3])
    assert old_policy_decay(0) == 0.0 and old_policy_decay(10_000) == 0.5  # DiffusionNFT defaults
    with pytest.raises(ValueError):
        old_policy_decay(1, cap=1.0)
    old, new = [T([1.0])], [T([3.0])]
    ema_update_(old, new, 0.25)
    assert old[0].item() == pytest.approx(0.25 * 1 + 0.75 * 3)


def test_group_advantages_global_and_group_std():
    rewards = T([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 0.0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    adv = group_advantages(rewards, groups, std="global")
    # batch mean 5/8; Σ(R − mean)² = 3·0.375² + 4·0.625² + 1.375² = 3.875 → σ = sqrt(3.875/8)
    sigma = math.sqrt(3.875 / 8)
    expect = [0.75, -0.25, -0.25, -0.25, 0.0, 0.0, 1.0, -1.0]
    assert adv.advantages.tolist() == pytest.approx([e / (sigma + 1e-4) for e in expect])
    assert adv.valid.tolist() == [True] * 4 + [False, False] + [True, True]  # group 1 all equal: skipped
    assert adv.n_valid == 6
    per = group_advantages(rewards, groups, std="group")
    s0 = math.sqrt((0.75**2 + 3 * 0.25**2) / 4)
    assert per.advantages.tolist() == pytest.approx(
        [0.75 / (s0 + 1e-4)] + [-0.25 / (s0 + 1e-4)] * 3 + [0.0, 0.0, 1 / (1 + 1e-4), -1 / (1 + 1e-4)]
    )
    with pytest.raises(ValueError, match="global, group"):
        group_advantages(rewards, groups, std="batch")


def test_aggregate_group_masks():
    masks = T([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    groups = torch.tensor([0, 0, 0, 1])
    violated = torch.tensor([True, True, False, False])
    out = aggregate_group_masks(masks, groups, violated)
    assert out.tolist() == [[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]]
    mean = aggregate_group_masks(masks, groups, violated, reduce="mean")
    assert mean[2].tolist() == [0.5, 0.5, 0.0]


def test_pixel_to_latent_mask_causal_wan_compression():
    assert [latent_frames(t, 4) for t in (1, 5, 9, 10, 81)] == [1, 2, 3, 3, 21]
    m = torch.zeros(10, 16, 16)
    m[0, 0, 0] = 1  # frame 0 alone → latent frame 0
    m[5, 9, 15] = 1  # frames 5..8 → latent frame 2, pixel (9, 15) → cell (1, 1)
    m[9, 0, 8] = 1  # leftover frame 9 folds into the last latent frame
    lat = pixel_to_latent_mask(m, temporal=4, spatial=8)
    assert lat.shape == (3, 2, 2)
    assert torch.nonzero(lat).tolist() == [[0, 0, 0], [2, 0, 1], [2, 1, 1]]
    # frames 1..4 are empty → latent frame 1 is empty
    assert lat[1].sum().item() == 0


def test_pixel_to_latent_mask_dilation_and_batch():
    m = torch.zeros(2, 1, 6, 6)
    m[1, 0, 2, 3] = 1
    lat = pixel_to_latent_mask(m, temporal=1, spatial=1, dilate=1)
    assert lat.shape == (2, 1, 6, 6) and lat[0].sum().item() == 0
    assert torch.nonzero(lat[1, 0]).tolist() == [[r, c] for r in (1, 2, 3) for c in (2, 3, 4)]
    lat2 = pixel_to_latent_mask(m.numpy(), temporal=1, spatial=2)
    assert lat2.shape == (2, 1, 3, 3) and lat2[1, 0, 1, 1].item() == 1.0 and lat2.sum().item() == 1.0


# ---------------------------------------------------------------- the one objective and its row rules
from creflow_train.losses import (  # noqa: E402
    LossConfig,
    PolicyBatch,
    ReflowBatch,
    creflow_objective,
    own_mask_probability,
    policy_rows,
    reflow_negatives,
)
from creflow_train.masks import fill_empty_masks, witness_frames  # noqa: E402


def _batch(seed: int = 0, b: int = 4):
    g = torch.Generator().manual_seed(seed)
    shape = (b, 2, 3, 4, 4)
    v_theta, v_old, v_ref, x0, eps = (torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(5))
    mask = (torch.rand(b, 3, 4, 4, generator=g, dtype=torch.float64) > 0.5).to(torch.float64)
    t = torch.rand(b, generator=g, dtype=torch.float64)
    adv = torch.tensor([2.0, -1.0, 0.5, -3.0], dtype=torch.float64)[:b]
    violated = torch.tensor([True, True, False, True])[:b]
    return PolicyBatch(v_theta.requires_grad_(True), v_old, x0, eps, t, adv, v_ref, mask, violated)


def test_loss_config_validates_and_derives_needs():
    assert LossConfig().mode == "creflow" and LossConfig().nft_scale == 5.0
    assert LossConfig(beta=0.1).nft_scale == pytest.approx(50.0)
    nft = LossConfig(mode="nft", anchor_outside=0.0, kl_weight=0.0)
    assert not nft.needs_masks and not nft.needs_ref and not nft.reflow and not nft.credit
    assert LossConfig(mode="nft").needs_masks  # the outside anchor reads the masks in any mode
    assert not LossConfig(mode="creflow", reflow_weight=0.0).reflow
    for bad, key in [({"mode": "grpo"}, "mode"), ({"adv_mode": "sign"}, "adv_mode"), ({"beta": 0.0}, "beta"),
                     ({"own_mask_r_max": 1.5}, "own_mask_r_max"), ({"reflow_max": -1}, "reflow_max"),
                     ({"mask_norm": "sum"}, "mask_norm"), ({"reflow_close_diff": -1.0}, "reflow_close_diff")]:
        with pytest.raises(ValueError, match=rf"^{key}:"):
            LossConfig(**bad)


def test_objective_is_the_sum_of_its_terms():
    """creflow_objective = C/β·credit-NFT + λ_KL·KL + λ·anchor (+ w·reflow), each equal to the public term."""
    b = _batch()
    cfg = LossConfig(mode="credit-nft", kl_weight=0.01, anchor_outside=2.0, own_mask_r_max=1.0)  # no r cap
    loss, terms = creflow_objective(cfg, b)
    nft, _ = credit_nft_loss(b.v_theta, b.v_old, b.x0, b.eps, b.t, b.advantages, b.mask)
    kl, _ = kl_anchor_loss(b.v_theta, b.v_ref, 0.01)
    anchor, _ = outside_anchor_loss(b.v_theta, b.v_ref, b.mask, 2.0)
    assert loss.item() == pytest.approx((nft + kl + anchor).item(), rel=1e-12)
    assert terms["credit_nft_loss"] == pytest.approx(nft.item(), rel=1e-12)
    assert terms["kl_loss"] == pytest.approx(kl.item()) and terms["anchor_loss"] == pytest.approx(anchor.item())
    x0s, eps_r, m_r = b.x0[:2] * 0.5, b.eps[:2], b.mask[:2]
    v_r = b.v_theta[:2] * 0.3
    rb = ReflowBatch(v_r, x0s, eps_r, m_r)
    both, t2 = creflow_objective(LossConfig(mode="creflow", kl_weight=0.01, anchor_outside=2.0,
                                            own_mask_r_max=1.0, reflow_weight=0.7), b, rb)
    refl, _ = corrective_reflow_loss(v_r, x0s, eps_r, m_r)
    assert both.item() == pytest.approx((nft + kl + anchor + 0.7 * refl).item(), rel=1e-12)
    assert t2["reflow_loss"] == pytest.approx(0.7 * refl.item())
    plain, _ = creflow_objective(LossConfig(mode="nft", kl_weight=0.0, anchor_outside=0.0), b)
    assert plain.item() == pytest.approx(nft_loss(b.v_theta, b.v_old, b.x0, b.eps, b.t, b.advantages)[0].item())
    with pytest.raises(ValueError, match="needs masks"):
        creflow_objective(LossConfig(mode="credit-nft"), PolicyBatch(b.v_theta, b.v_old, b.x0, b.eps, b.t,
                                                                     b.advantages, b.v_ref))


def test_objective_chunks_add_up_to_the_whole_batch():
    """With the whole batch's counts, chunk losses, gradients and terms sum to the whole batch's (micro-batches
    and data-parallel ranks rely on this)."""
    b = _batch()
    cfg = LossConfig(mode="creflow", kl_weight=0.01)
    rb = ReflowBatch(b.v_theta[1:4] * 0.5, b.x0[1:4], b.eps[1:4], b.mask[1:4])
    whole, terms = creflow_objective(cfg, b, rb)
    (g_whole,) = torch.autograd.grad(whole, b.v_theta, retain_graph=True)
    parts, acc = [], {}
    for rows, rrows in ((slice(0, 1), slice(0, 2)), (slice(1, 4), slice(2, 3))):
        pb = PolicyBatch(*(getattr(b, f)[rows] if getattr(b, f) is not None else None for f in
                           ("v_theta", "v_old", "x0", "eps", "t", "advantages", "v_ref", "mask", "violated")))
        rbc = ReflowBatch(rb.v_theta[rrows], rb.x0_star[rrows], rb.eps[rrows], rb.mask[rrows])
        loss, t = creflow_objective(cfg, pb, rbc, n_policy=4, n_reflow=3)
        parts.append(loss)
        for k, v in t.items():
            acc[k] = acc.get(k, 0.0) + v
    (g_parts,) = torch.autograd.grad(sum(parts), b.v_theta)
    assert sum(p.item() for p in parts) == pytest.approx(whole.item(), rel=1e-12)
    assert torch.allclose(g_parts, g_whole, rtol=1e-12, atol=0)
    assert acc == pytest.approx(terms, rel=1e-12)


def test_a_violating_rollout_is_never_a_positive_inside_its_own_mask():
    """Bug 2 (r): with graded rewards a violating rollout can sit above its group mean (A > 0, r > ½); inside its
    own mask r is capped at own_mask_r_max = ½, so there it is treated exactly as a zero-advantage row."""
    b = _batch()
    adv = torch.tensor([4.0, -1.0, 0.5, -3.0], dtype=torch.float64)  # row 0 violates and has A > 0
    b.advantages = adv
    cfg = LossConfig(mode="credit-nft", kl_weight=0.0, anchor_outside=0.0)
    loss, _ = creflow_objective(cfg, b)
    capped = adv.clone()
    capped[0] = 0.0  # r = ½ for row 0; rows 1 and 3 violate with r < ½ (kept), row 2 is satisfied (kept)
    want, _ = credit_nft_loss(b.v_theta, b.v_old, b.x0, b.eps, b.t, capped, b.mask)
    assert loss.item() == pytest.approx(want.item(), rel=1e-12)
    uncapped, _ = creflow_objective(LossConfig(mode="credit-nft", kl_weight=0.0, anchor_outside=0.0,
                                               own_mask_r_max=1.0), b)
    assert abs(uncapped.item() - loss.item()) > 1e-3  # the cap changes the loss
    zero, _ = creflow_objective(LossConfig(mode="credit-nft", kl_weight=0.0, anchor_outside=0.0,
                                           own_mask_r_max=0.0), b)
    neg = adv.clone()
    neg[[0, 1, 3]] = -5.0  # r = 0 inside every violating row's mask
    assert zero.item() == pytest.approx(credit_nft_loss(b.v_theta, b.v_old, b.x0, b.eps, b.t, neg, b.mask)[0].item())
    soft = own_mask_probability(torch.tensor([0.9]), torch.tensor([[0.0, 0.5, 1.0]]), torch.tensor([True]),
                                torch.zeros(1, 3), 0.5)
    assert soft.flatten().tolist() == pytest.approx([0.9, 0.7, 0.5])  # a soft mask interpolates


def test_policy_rows_keep_zero_advantage_groups_by_default():
    valid = torch.tensor([True, True, False, False, True])
    assert policy_rows(valid, LossConfig()).tolist() == [0, 1, 2, 3, 4]  # DiffusionNFT: A = 0 rows train
    assert policy_rows(valid, LossConfig(keep_zero_advantage=False)).tolist() == [0, 1, 4]  # the precursor
    b = _batch()
    b.advantages = torch.zeros(4, dtype=torch.float64)
    loss, _ = creflow_objective(LossConfig(mode="nft", kl_weight=0.0, anchor_outside=0.0, adaptive=False), b)
    loss.backward()  # r = ½, β = 1: the gradient is C/β·(v_θ − v_old)·2/(n·B) — a pull towards θ_old
    n = b.x0[0].numel()
    assert torch.allclose(b.v_theta.grad, 5.0 * 2 * (b.v_theta - b.v_old).detach() / (n * 4), rtol=1e-12)


def test_reflow_negatives_are_violators_in_groups_with_a_satisfied_rollout():
    """Bug 2 (positives): positives are `all_satisfied`, not "above the group mean"."""
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    satisfied = torch.tensor([True, False, False, False, False, True, True])
    assert reflow_negatives(groups, satisfied).tolist() == [False, True, True, False, False, False, False]
    g = torch.Generator().manual_seed(0)
    one = reflow_negatives(groups, satisfied, max_rows=1, generator=g)
    assert int(one.sum()) == 1 and bool(one[1] | one[2])
    again = reflow_negatives(groups, satisfied, max_rows=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(one, again)
    x0 = T([[1.0], [3.0], [5.0], [0.0], [0.0], [2.0], [2.0]])
    ct = corrective_targets(x0, torch.ones(7, 1, dtype=torch.float64), groups, satisfied, select=one)
    assert len(ct) == 1 and ct.x0_star.tolist() == [[1.0]]  # the one positive's latent


def test_fill_empty_masks_uses_the_witness_frames():
    masks = torch.zeros(4, 3, 2, 2)
    masks[1, 0, 0, 0] = 1.0  # row 1 has a mask of its own
    violated = torch.tensor([True, True, False, True])
    frames = torch.tensor([[False, True, False], [True, True, True], [False] * 3, [False] * 3])
    out, filled = fill_empty_masks(masks, violated, frames)
    assert filled.tolist() == [True, False, False, True]
    assert out[0].sum(dim=(1, 2)).tolist() == [0.0, 4.0, 0.0]  # frame 1, whole extent
    assert torch.equal(out[1], masks[1]) and out[2].sum() == 0  # own mask kept; satisfied row untouched
    assert out[3].sum() == 12  # no witness frame named: every frame

    class C:
        def __init__(self, sat, frames):
            self.satisfied = sat
            self.witness = None if frames is None else type("W", (), {"frames": frames})()

    results = [type("R", (), {"constraints": [C(False, (0, 2, 9)), C(True, None)]})(),
               type("R", (), {"constraints": []})()]
    assert witness_frames(results, 3).tolist() == [[True, False, True], [False, False, False]]
