"""`nft_loss` / `creflow_objective` against an oracle of DiffusionNFT's loss, at fp32, values and gradients.

The oracle is written here from the formulas of NVlabs/DiffusionNFT `scripts/train_nft_sd3.py` (its training
loop): clip the advantage to ±C (`adv_clip_max`), r = clamp(A/C/2 + ½, 0, 1); x_t = (1 − t)·x0 + t·ε;
positive prediction β·v_θ + (1 − β)·v_old, implicit negative (1 + β)·v_old − β·v_θ; adaptive weighting
x̂0 = x_t − t·v, weight = mean|x̂0 − x0| per sample in float64, clipped at 1e-5, no gradient;
L± = mean((x̂0± − x0)² / weight±); policy loss = mean((r·L⁺/β + (1 − r)·L⁻/β)·C); total = policy +
kl·mean(mean‖v_θ − v_ref‖²) (their `train.beta`, 1e-4). Their script has no non-adaptive form: "adaptive off"
is the DiffusionNFT paper's velocity loss r‖v⁺ − v‖² + (1 − r)‖v⁻ − v‖², v = ε − x0, at the same C/β scale.

Tolerance: ours runs in float32 and the oracle in float64 on the same float32 inputs; the allowed difference is
a first-order forward error bound of float32 arithmetic (u = 2⁻²⁴, γ_k = k·u / (1 − k·u)), element by element:
the error e± = x̂0± − x0 (or v± − v) carries is γ_8 × the magnitudes of the operands it is computed from (the
subtraction cancels, so it is absolute, not relative); each per-sample mean adds γ_n (n elements) relative,
which also bounds the float32 x0 weight against their float64 one; the batch mean adds γ_B. The value bound
sums |∂L/∂e|·Δe + L·γ over the elements, the gradient bound does the same per element.
"""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")

from creflow_train.losses import LossConfig, PolicyBatch, creflow_objective, nft_loss  # noqa: E402

U32 = 2.0**-24
SHAPE = (6, 4, 3, 5, 5)  # (B, C, T, H, W)


def gamma(k: int) -> float:
    return k * U32 / (1 - k * U32)


def oracle(fwd, old, x0, noise, t, adv, *, beta, clip, adaptive, kl=0.0, ref=None):
    """DiffusionNFT's total loss (in the inputs' dtype), written from their training loop's formulas."""
    dims = tuple(range(1, x0.ndim))
    a = torch.clamp(adv, -clip, clip)
    r = torch.clamp(a / clip / 2.0 + 0.5, 0, 1)
    te = t.view(-1, *([1] * (x0.ndim - 1)))
    xt = (1 - te) * x0 + te * noise
    pos = beta * fwd + (1 - beta) * old.detach()
    neg = (1.0 + beta) * old.detach() - beta * fwd
    if adaptive:
        x0_pos, x0_neg = xt - te * pos, xt - te * neg
        with torch.no_grad():
            w_pos = (x0_pos.double() - x0.double()).abs().mean(dim=dims, keepdim=True).clip(min=0.00001)
            w_neg = (x0_neg.double() - x0.double()).abs().mean(dim=dims, keepdim=True).clip(min=0.00001)
        l_pos = ((x0_pos - x0) ** 2 / w_pos).mean(dim=dims)
        l_neg = ((x0_neg - x0) ** 2 / w_neg).mean(dim=dims)
    else:
        v = noise - x0
        l_pos, l_neg = ((pos - v) ** 2).mean(dim=dims), ((neg - v) ** 2).mean(dim=dims)
    policy = (r * l_pos / beta + (1.0 - r) * l_neg / beta) * clip
    total = policy.mean()
    if kl:
        total = total + kl * ((fwd - ref) ** 2).mean(dim=dims).mean()
    return total


def inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    x0, noise, v_theta, v_old, v_ref = (torch.randn(SHAPE, generator=g) for _ in range(5))
    v_old = v_theta + 0.3 * v_old  # θ_old near θ, as after a few EMA steps
    t = torch.rand(SHAPE[0], generator=g) * 0.96 + 0.02
    adv = torch.tensor([-7.0, -2.0, -0.3, 0.0, 1.5, 9.0])  # both clips, both signs, zero
    return x0, noise, v_theta, v_old, v_ref, t, adv


def check(ours, ours_grad, ref64, ref_grad64, bound, bound_grad) -> None:
    assert ours.dtype == torch.float32 and ours_grad.dtype == torch.float32
    assert abs(float(ours.detach()) - float(ref64)) <= float(bound)
    err = (ours_grad.double() - ref_grad64).abs()
    assert bool((err <= bound_grad).all()), float((err - bound_grad).max())


def error_bounds(fwd, old, x0, noise, t, adv, *, beta, clip, adaptive):
    """(value bound, per-element gradient bound) of a float32 evaluation of the NFT loss, in float64."""
    f64 = [z.double() for z in (fwd, old, x0, noise, t, adv)]
    fwd, old, x0, noise, t, adv = f64
    b, n = x0.shape[0], x0[0].numel()
    dims = tuple(range(1, x0.ndim))
    r = torch.clamp(torch.clamp(adv, -clip, clip) / clip / 2 + 0.5, 0, 1).view(-1, *([1] * (x0.ndim - 1)))
    te = t.view_as(r)
    pos, neg = beta * fwd + (1 - beta) * old, (1 + beta) * old - beta * fwd
    mag_pos, mag_neg = beta * fwd.abs() + abs(1 - beta) * old.abs(), (1 + beta) * old.abs() + beta * fwd.abs()
    xt = (1 - te) * x0 + te * noise
    if adaptive:
        e_pos, e_neg = xt - te * pos - x0, xt - te * neg - x0
        base = (1 - te) * x0.abs() + te * noise.abs() + x0.abs()
        d_pos, d_neg = gamma(8) * (base + te * mag_pos), gamma(8) * (base + te * mag_neg)
        w_pos = e_pos.abs().mean(dim=dims, keepdim=True).clip(min=1e-5)
        w_neg = e_neg.abs().mean(dim=dims, keepdim=True).clip(min=1e-5)
        de_dv = te * beta  # |∂e±/∂v_θ|
    else:
        v = noise - x0
        e_pos, e_neg = pos - v, neg - v
        d_pos, d_neg = gamma(8) * (mag_pos + noise.abs() + x0.abs()), gamma(8) * (mag_neg + noise.abs() + x0.abs())
        w_pos = w_neg = torch.ones_like(r)
        de_dv = beta
    g_rel = gamma(n + b + 16)  # the reductions (and, adaptive, the weights' own relative error)
    scale = clip / beta / (b * n)
    val_terms = r * (2 * e_pos.abs() * d_pos + e_pos.square() * g_rel) / w_pos \
        + (1 - r) * (2 * e_neg.abs() * d_neg + e_neg.square() * g_rel) / w_neg
    grad_b = scale * 2 * de_dv * (r * (d_pos + e_pos.abs() * g_rel) / w_pos
                                  + (1 - r) * (d_neg + e_neg.abs() * g_rel) / w_neg)
    return scale * float(val_terms.sum()) + 1e-30, grad_b + 1e-30


def oracle_with_grads(x0, noise, v_theta, v_old, t, adv, **kw):
    """The oracle's loss and ∂/∂v_θ (float64) with the float32 error bounds of that computation."""
    d = {k: v.double() for k, v in dict(x0=x0, noise=noise, old=v_old, t=t, adv=adv).items()}
    ref = kw.pop("ref", None)
    kl = kw.pop("kl", 0.0)
    fwd = v_theta.double().requires_grad_(True)
    val = oracle(fwd, d["old"], d["x0"], d["noise"], d["t"], d["adv"], kl=kl,
                 ref=ref.double() if ref is not None else None, **kw)
    (grad,) = torch.autograd.grad(val, fwd)
    val = val.detach()
    bound, bound_g = error_bounds(v_theta, v_old, x0, noise, t, adv, **kw)
    if kl:  # λ·mean‖v_θ − v_ref‖²: each element's difference is exact to u, the reductions add γ
        diff = (v_theta.double() - ref.double()).abs()
        bound += kl * float((2 * diff * diff * U32 + diff.square() * gamma(diff.numel())).mean())
        bound_g = bound_g + kl * 2 * diff * gamma(4) / diff.numel()
    return val, grad, bound, bound_g


@pytest.mark.parametrize(("beta", "clip", "adaptive"), list(itertools.product((0.1, 1.0), (1.0, 5.0), (True, False))))
def test_nft_loss_matches_the_diffusion_nft_oracle(beta: float, clip: float, adaptive: bool) -> None:
    x0, noise, v_theta, v_old, _, t, adv = inputs(int(beta * 10 + clip))
    ours_in = v_theta.clone().requires_grad_(True)
    loss, terms = nft_loss(ours_in, v_old, x0, noise, t, adv, beta=beta, clip=clip, adaptive=adaptive)
    (grad,) = torch.autograd.grad(loss, ours_in)
    val, grad64, bound, bound_g = oracle_with_grads(x0, noise, v_theta, v_old, t, adv, beta=beta, clip=clip,
                                                    adaptive=adaptive)
    check(loss, grad, val, grad64, bound, bound_g)
    assert float(grad64.abs().max()) > 1e-3  # a gradient that is there to compare
    assert terms["nft_loss"] == pytest.approx(float(val), rel=1e-5)


@pytest.mark.parametrize("adaptive", [True, False])
def test_the_objective_is_diffusion_nft_plus_their_kl_term(adaptive: bool) -> None:
    """mode nft, no masks, KL 1e-4 (their train.beta): `creflow_objective` is their whole loss."""
    x0, noise, v_theta, v_old, v_ref, t, adv = inputs(7)
    cfg = LossConfig(mode="nft", beta=1.0, adv_clip=5.0, adaptive=adaptive, kl_weight=1e-4, anchor_outside=0.0)
    ours_in = v_theta.clone().requires_grad_(True)
    loss, _ = creflow_objective(cfg, PolicyBatch(ours_in, v_old, x0, noise, t, adv, v_ref=v_ref))
    (grad,) = torch.autograd.grad(loss, ours_in)
    val, grad64, bound, bound_g = oracle_with_grads(x0, noise, v_theta, v_old, t, adv, beta=1.0, clip=5.0,
                                                    adaptive=adaptive, kl=1e-4, ref=v_ref)
    check(loss, grad, val, grad64, bound, bound_g)


def test_the_bound_has_teeth() -> None:
    """The tolerance is tight enough to matter: the unscaled loss (ours before DiffusionNFT's C/β) and a 1e-3
    error in β fall outside it, and it stays under 1e-4 of the loss (a worst-case sum of float32
    rounding errors; the observed differences are 100–1000× smaller)."""
    x0, noise, v_theta, v_old, _, t, adv = inputs(3)
    loss, _ = nft_loss(v_theta, v_old, x0, noise, t, adv, beta=0.1, clip=5.0)
    val, _, bound, _ = oracle_with_grads(x0, noise, v_theta, v_old, t, adv, beta=0.1, clip=5.0, adaptive=True)
    assert abs(float(loss) - float(val)) <= bound < 1e-4 * float(val)
    assert abs(float(loss) / 50.0 - float(val)) > 1000 * bound
    bumped, _ = nft_loss(v_theta, v_old, x0, noise, t, adv, beta=0.1 * (1 + 1e-3), clip=5.0)
    assert abs(float(bumped) - float(val)) > bound
