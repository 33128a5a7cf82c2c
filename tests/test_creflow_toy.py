"""The toy ablation's world, grounder, judge, reward masks, model, one training step and the CLI."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from dataclasses import replace  # noqa: E402

from creflow_train.toy import world as W  # noqa: E402
from creflow_train.toy.grounder import Thresholds, ground, signals  # noqa: E402
from creflow_train.toy.judge import judge  # noqa: E402
from creflow_train.toy.model import TinyVideoFlow, decode, encode, full_video, sample  # noqa: E402

CFG = W.WorldConfig()


def _episodes(outcome: str, n: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lay = W.sample_layouts(n, CFG, gen)
    out = torch.full((n,), W.OUTCOMES.index(outcome))
    return W.make_episodes(lay, out, CFG, gen)


def test_render_draws_palette_squares():
    ep = _episodes("success", n=2)
    v = W.render(ep, CFG)
    assert v.shape == (2, CFG.frames, 3, CFG.size, CFG.size)
    r, c = ep.block[0, 0].tolist()
    assert v[0, 0, :, r, c].tolist() == pytest.approx(list(W.PALETTE["block"]))
    gr, gc = CFG.goal_box
    assert v[0, 0, :, gr, gc].tolist() == pytest.approx(list(W.PALETTE["goal"]))
    # success: the block ends in the centre of the goal zone
    assert CFG.goal_target == (gr + 2, gc + 2)
    assert ep.block[:, -1].tolist() == [list(CFG.goal_target)] * 2


def test_positions_snap_to_the_latent_grid():
    gen = torch.Generator().manual_seed(1)
    lay = W.sample_layouts(64, CFG, gen)
    out = torch.arange(64) % len(W.OUTCOMES)
    ep = W.make_episodes(lay, out, CFG, gen)
    for pos in (ep.gripper, ep.block, ep.blue, ep.yellow):
        assert (pos % CFG.grid == 0).all()
        assert (pos >= 0).all() and (pos <= CFG.size - W.OBJECT_SIZE).all()
    # every object is one latent cell: a 2×2 square at an even position encodes to a single pixel-unshuffle cell
    z = encode(W.render(ep, CFG)[:4])
    assert z.shape[-1] == CFG.size // 2


@pytest.mark.parametrize(
    ("outcome", "failed_check"),
    [("success", None), ("drop", "delivered"), ("wrong", "delivered"), ("bump", "undisturbed")],
)
def test_judge_on_demonstrations(outcome, failed_check):
    v = W.render(_episodes(outcome, n=6, seed=3), CFG)
    verdict = judge(v)
    if failed_check is None:
        assert verdict.success.all()
    else:
        assert not verdict.success.any()
        assert not getattr(verdict, failed_check).any()
        assert verdict.reached.all()


def test_judge_rejects_blurred_frames():
    v = W.render(_episodes("success", n=3), CFG)
    blurred = torch.nn.functional.avg_pool2d(v.flatten(0, 1), 3, stride=1, padding=1).unflatten(0, v.shape[:2])
    assert not judge(blurred).valid.any()


def test_grounder_signals_hand_computed():
    ep = _episodes("success", n=1)
    obs = ground(W.render(ep, CFG))
    r, c = ep.block[0, 0].tolist()
    assert obs.centres["block"][0, 0].tolist() == [r + 0.5, c + 0.5]
    assert obs.areas["blue"][0].tolist() == [4.0] * CFG.frames
    gr, gc = CFG.goal_box
    assert obs.goal_box[0].tolist() == [gr, gc, gr + W.GOAL_SIZE - 1, gc + W.GOAL_SIZE - 1]
    sig = signals(obs, Thresholds())
    grasp, _, end = CFG.keyframes
    # held pose at and after the grasp: gripper exactly 2 rows above → pose error 0 → robustness 1
    assert sig["holding(gripper,block)"][0, grasp:].tolist() == [1.0] * (CFG.frames - grasp)
    # at the end the block centre (gr+2.5, gc+2.5) is 2.5 px inside the box → (2.5 − 0) / 1.5, clipped to 1
    assert sig["at(block,goal)"][0, end:].tolist() == [1.0] * (CFG.frames - end)
    # distractors never move: speed 0 → (0 − 0.5) / 1 = −0.5
    assert sig["moving(blue)"][0].tolist() == [-0.5] * CFG.frames
    # a full 2×2 square: (min(4/4, 1) − 0.625) / 0.375 = 1; half of it: (0.5 − 0.625) / 0.375 = −1/3
    assert sig["visible(block)"][0].tolist() == [1.0] * CFG.frames
    v = W.render(ep, CFG)
    v[0, 2, :, :, :] = torch.where(obs.masks["block"][0, 2] & (torch.arange(CFG.size)[None, :] % 2 == 0),
                                   torch.tensor(W.PALETTE["background"])[:, None, None], v[0, 2])
    half = signals(ground(v))["visible(block)"][0, 2].item()
    assert half == pytest.approx((0.5 - 0.625) / 0.375)


def test_reward_and_masks_localise_violations():
    pytest.importorskip("lark")
    from creflow_train.toy.reward import score

    v = W.render(_episodes("bump", n=1, seed=5), CFG)
    ok = W.render(_episodes("success", n=1, seed=5), CFG)
    sc = score(torch.cat([ok, v]), dilate=0, dilate_time=0)
    assert sc.rewards[0].item() == 1.0 and sc.masks[0].sum().item() == 0.0
    names = sc.constraint_names
    assert sc.rewards[1].item() == pytest.approx(6 / 7)  # one of keep_blue / keep_yellow (weight 1 of 7) fails
    failed = [n for n, s in zip(names, sc.satisfied[1].tolist(), strict=True) if not s]
    assert len(failed) == 1 and failed[0] in ("keep_blue", "keep_yellow")
    who = failed[0].split("_")[1]
    region = ground(v).masks[who][0]  # (T, H, W)
    m = sc.masks[1]
    assert m.sum() > 0
    assert torch.all(m <= region.float())  # only the disturbed object's pixels are blamed
    assert m[0].sum().item() == 0.0  # not before it moves


def test_masks_blame_a_vanished_object_where_it_should_be():
    pytest.importorskip("lark")
    from creflow_train.toy.reward import entity_regions, score

    v = W.render(_episodes("success", n=1, seed=2), CFG)
    before = ground(v).masks["block"][0]  # (T, H, W)
    v[0, 5] = torch.where(before[5], torch.tensor(W.PALETTE["background"])[:, None, None], v[0, 5])
    regions = entity_regions(v)["block"][0]
    assert regions[5].sum().item() == 8  # the vanished frame borrows frames 4 and 6 (2×2 each, disjoint)
    assert torch.equal(regions[5], before[4] | before[6])
    assert torch.equal(regions[4], before[4])  # frames where the block is whole keep their own region
    sc = score(v, dilate=0, dilate_time=0)
    assert not sc.satisfied[0, sc.constraint_names.index("intact")]
    assert sc.masks[0, 5].bool().logical_and(regions[5]).sum().item() == 8


def test_encode_decode_roundtrip_and_zero_init_model():
    v = W.render(_episodes("success", n=2), CFG)
    z = encode(v)
    assert z.shape == (2, 12, CFG.frames, CFG.size // 2, CFG.size // 2)
    assert torch.allclose(decode(z), v, atol=1e-6)
    model = TinyVideoFlow(CFG.frames, CFG.size, ch=16, depth=2)
    out = model(z[:, :, 1:], torch.tensor([0.3, 0.9]), z[:, :, 0])
    assert out.shape == z[:, :, 1:].shape and out.abs().max().item() == 0.0  # zero-initialised head
    # a zero velocity leaves the noise unchanged: the sample is the noise itself
    noise = torch.randn(z[:, :, 1:].shape)
    assert torch.equal(sample(model, z[:, :, 0], noise, steps=3), noise)
    assert full_video(z[:, :, 0], z[:, :, 1:]).shape == v.shape


def _tiny_setup(steps: int = 1):
    from creflow_train.toy.train import EvalSet, RLConfig

    torch.manual_seed(0)
    model = TinyVideoFlow(CFG.frames, CFG.size, ch=16, depth=2).eval()
    with torch.no_grad():  # a non-trivial velocity field so rollouts differ
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    cfg = RLConfig(steps=steps, prompts=2, group=4, sample_steps=2, eval_every=1, eval_prompts=2, eval_noises=1)
    return model, cfg, EvalSet(CFG, cfg, model)


@pytest.mark.parametrize("arm", ["nft", "creflow"])
def test_one_training_step_updates_and_evaluates(arm):
    pytest.importorskip("lark")
    from creflow_train.toy.train import train_arm

    model, cfg, evalset = _tiny_setup()
    before = [p.detach().clone() for p in model.parameters()]
    res = train_arm(arm, model, CFG, cfg, seed=0, evalset=evalset)
    assert [e.step for e in res.evals] == [0, 1]
    e0 = res.evals[0]  # the pretrained model against itself
    # the copy samples what the pretrained model sampled, up to float32 summation order under another
    # thread count: pixels are O(1), so a few ulps of float32 per pixel bound the mean |Δ| (exact 0 on one CPU)
    tol = 16 * torch.finfo(torch.float32).eps
    assert e0.drift_outside <= tol and (e0.drift_kept <= tol or math.isnan(e0.drift_kept))
    assert len(res.step_seconds) == 1
    # the pretrained weights passed in are never modified (each arm trains a copy)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.slow
def test_parallel_runs_equal_sequential_runs():
    """jobs 2 (spawned workers) = jobs 1 in this process, whatever this process's thread count: train_arm pins it."""
    pytest.importorskip("lark")
    from creflow_train.toy.bench import AblationConfig, _train_all

    model, cfg, evalset = _tiny_setup(steps=2)
    ab = AblationConfig(rl=cfg, seeds=(0, 1), arms=("nft", "creflow"))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seq = _train_all(ab, model, evalset, jobs=1)
    finally:
        torch.set_num_threads(threads)
    par = _train_all(ab, model, evalset, jobs=2)
    assert [(r.arm, r.seed) for r in par] == [("nft", 0), ("creflow", 0), ("nft", 1), ("creflow", 1)]
    for a, b in zip(seq, par, strict=True):
        assert repr(a.evals) == repr(b.evals) and a.losses == b.losses  # repr: exact floats, NaN equal to NaN


def test_two_runs_of_a_short_arm_give_identical_curves():
    """Determinism: the same (arm, seed, config) twice gives bit-identical losses and evaluations, the run pins
    deterministic algorithms and one thread, and the caller's settings come back afterwards."""
    pytest.importorskip("lark")
    from creflow_train.toy.train import train_arm

    model, cfg, evalset = _tiny_setup(steps=3)
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    runs = [train_arm("creflow", model, CFG, cfg, seed=4, evalset=evalset) for _ in range(2)]
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, det)
    a, b = runs
    assert a.losses == b.losses and repr(a.evals) == repr(b.evals)
    assert len(a.losses) == 3 and any(v is not None for v in a.losses)
    other = train_arm("creflow", model, CFG, cfg, seed=5, evalset=evalset)
    assert other.losses != a.losses  # the seed matters: the equality above is not vacuous


def test_violating_rollouts_with_empty_masks_fall_back_to_their_witness_frames(monkeypatch):
    """Bug 3 (toy side): a violating rollout with an empty mask used to get zero credit-NFT gradient while still
    counting in the batch mean (the weights did not move); now its witness frames' whole extent is its mask."""
    pytest.importorskip("lark")
    from creflow_train.losses import LossConfig
    from creflow_train.toy import train as T
    from creflow_train.toy.reward import ToyScore

    model, cfg, evalset = _tiny_setup()
    cfg = replace(cfg, loss=LossConfig(mode="credit-nft", anchor_outside=0.0, kl_weight=0.0))

    def fake_score(videos, *, with_masks=True, **_):
        b, t, _, h, w = videos.shape
        rewards = torch.linspace(0, 1, b)  # every group has an advantage
        sat = torch.zeros(b, 6, dtype=torch.bool)
        frames = torch.zeros(b, t, dtype=torch.bool)
        frames[:, 3] = True  # every witness names frame 3
        return ToyScore(rewards, sat, torch.zeros(b, t, h, w), ("a",) * 6, frames)

    monkeypatch.setattr(T, "score", fake_score)
    monkeypatch.setattr(T.EvalSet, "evaluate", lambda self, m, step: T.EvalPoint(step, 0, 0, 0, 0, 0, 0))
    seen = {}
    real = T.sample_rollouts

    def spy(*a, **k):
        seen["ro"] = ro = real(*a, **k)
        return ro

    monkeypatch.setattr(T, "sample_rollouts", spy)
    res = T.train_arm("credit-nft", model, CFG, cfg, seed=0, evalset=evalset)
    n = cfg.prompts * cfg.group
    assert res.mask_fallbacks == n and res.losses[0] is not None and res.losses[0] > 0
    lmask = seen["ro"].lmask  # (B, T−1, h, w): frame 3 of the video is latent frame 2, all of it
    assert torch.equal(lmask[:, 2], torch.ones_like(lmask[:, 2])) and lmask[:, [0, 1, 3]].sum() == 0


def test_cli_prints_four_lines(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from creflow_train import cli
    from creflow_train.toy import bench
    from creflow_train.toy.mathenv import PORTABLE_MATH

    for k, v in PORTABLE_MATH.items():  # as a shell that set them would: the CLI keeps them, warns of nothing
        monkeypatch.setenv(k, v)
    seen = {}

    def fake_run(cfg, out, log, jobs=1, cache_dir=None, shipped_cache=None):
        seen["cfg"], seen["out"], seen["jobs"], seen["cache"] = cfg, out, jobs, (cache_dir, shipped_cache)
        arms = {
            a: bench.ArmSummary(a, [0, 4], [0], {"success": [0.1, s], "drift_kept": [0, 0.01]}, {}, {}, 1.0, 0.0)
            for a, s in zip(("nft", "credit-nft", "reflow", "creflow"), (0.25, 0.3125, 0.5, 0.6666), strict=True)
        }
        return bench.AblationSummary(arms, 0.25, 0.1, 1.0)

    monkeypatch.setattr(bench, "run_ablation", fake_run)
    res = CliRunner().invoke(cli.app, ["toy", "--quick", "--out", str(tmp_path), "--jobs", "2", "--lr", "1e-4",
                                       "--anchor-outside", "0"])
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-4:] == [
        "nft: success 25.0%", "credit-nft: success 31.2%", "reflow: success 50.0%", "creflow: success 66.7%",
    ]
    assert seen["cfg"].seeds == (0,) and seen["cfg"].rl.steps == bench.quick_config().rl.steps
    assert seen["out"] == tmp_path and seen["jobs"] == 2
    assert seen["cache"] == (None, cli.SHIPPED_CACHE)  # the checkout's checkpoint is read, whatever --out is
    rl = seen["cfg"].rl
    assert (rl.lr, rl.loss.anchor_outside, rl.loss.kl_weight, rl.threads) == (1e-4, 0.0, 1e-4, 1)
    assert "warning" not in res.output
    assert CliRunner().invoke(cli.app, ["toy", "--quick"]).exit_code == 0
    assert seen["out"] == cli.DEFAULT_OUT / "quick"
    assert CliRunner().invoke(cli.app, ["toy", "--quick", "--cache", str(tmp_path / "c")]).exit_code == 0
    assert seen["cache"] == (tmp_path / "c", None)  # an explicit cache is read and written, the shipped one unused
    for flag in (["--lr", "0"], ["--anchor-outside", "-1"], ["--mask-norm", "sum"], ["--mask-floor", "2"]):
        assert CliRunner().invoke(cli.app, ["toy", *flag]).exit_code == 2, flag
    assert CliRunner().invoke(cli.app, ["toy", "--quick", "--seeds", "2", "--first-seed", "3"]).exit_code == 0
    assert seen["cfg"].seeds == (0,)  # --quick fixes its one seed
    assert CliRunner().invoke(cli.app, ["toy", "--seeds", "2", "--first-seed", "3", "--arms", "nft-kl"]).exit_code == 0
    assert seen["cfg"].seeds == (3, 4) and seen["cfg"].arms == ("nft-kl",)
    bad = CliRunner().invoke(cli.app, ["toy", "--arms", "nft,grpo"])
    assert bad.exit_code == 2


def test_line_plot_writes_png(tmp_path):
    pytest.importorskip("cv2")
    import numpy as np

    from creflow_train.toy.plot import line_plot

    p = line_plot(tmp_path / "a.png", {"x": (np.arange(3), np.array([0.1, 0.5, 0.9]), np.full(3, 0.05))},
                  title="t", xlabel="step", ylabel="s")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_toy_outputs_are_git_ignored(root):
    """A default `creflow toy` run writes under out/creflow_toy/, which git ignores: no tracked file changes."""
    import shutil
    import subprocess

    from creflow_train import cli

    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [cli.DEFAULT_OUT / sub / name for sub in ("quick", "run")
             for name in ("results.json", "curves.csv", "success.png", "_work/pretrained_0123456789.pt")]
    res = subprocess.run(["git", "check-ignore", "--no-index", *map(str, paths)], cwd=root, capture_output=True,
                         text=True, check=False)
    assert sorted(res.stdout.split()) == sorted(map(str, paths))
    tracked = subprocess.run(["git", "ls-files", str(cli.DEFAULT_OUT)], cwd=root, capture_output=True, text=True)
    assert tracked.stdout == ""


def test_pretrained_model_never_writes_into_the_shipped_cache(tmp_path, monkeypatch):
    from creflow_train.toy import bench
    from creflow_train.toy.pretrain import PretrainConfig

    world, cfg = W.WorldConfig(frames=4), PretrainConfig(steps=1, batch=2, ch=8)
    shipped, cache = tmp_path / "shipped", tmp_path / "cache"
    shipped.mkdir()
    model = bench.pretrained_model(world, cfg, cache, shipped=shipped)
    assert list(shipped.iterdir()) == [] and len(list(cache.glob("pretrained_*.pt"))) == 1
    (cache / next(cache.iterdir()).name).rename(shipped / next(cache.iterdir()).name)
    monkeypatch.setattr(bench, "pretrain", lambda *a, **k: pytest.fail("the shipped checkpoint must be reused"))
    again = bench.pretrained_model(world, cfg, cache, shipped=shipped)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                  strict=True))
    assert list(cache.iterdir()) == []
