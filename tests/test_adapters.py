"""ltlreward.adapters against copies of Flow-GRPO's and DiffusionNFT's reward call sites.

The call-site functions below are written from the signatures and data flow of `scripts/train_sd3.py`
(yifan123/flow_grpo @ ac4c86e) and `scripts/train_nft_sd3.py` (NVlabs/DiffusionNFT @ 24af555): how they submit
the reward to a thread pool, read `(rewards, reward_metadata)`, turn `rewards.items()` into float tensors,
collate sample dicts on dim 0, repeat "avg" over the timesteps, gather every key, log means and normalise "avg"
into advantages, then shuffle and slice every sample key on dim 0. They are our paraphrase, not their code.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent import futures

import numpy as np
import pytest

torch = pytest.importorskip("torch")

SPEC = """\
task "the bright thing and the dark thing show up"
entity bright = "bright thing" hsv=(0,0,130,180,255,255)
entity dark = "dark thing" hsv=(0,0,0,180,255,125)
constraint seen "the bright thing is always visible": G visible(bright)
constraint dark "the dark thing is visible at some point": F visible(dark)
reward weighted_mean
"""
T, H, W = 6, 32, 32


def videos(kinds: str) -> torch.Tensor:
    """(B, T, C, H, W) float videos in [0, 1]: 'w' all white (dark never seen: 'dark' violated, reward ½), 's' split
    white|black (both seen: satisfied, reward 1), 'b' all black (bright never seen: 'seen' violated, reward ½)."""
    v = torch.zeros(len(kinds), T, 3, H, W)
    for i, k in enumerate(kinds):
        if k == "w":
            v[i] = 1.0
        elif k == "s":
            v[i, ..., : W // 2] = 1.0
    return v


EXPECTED = {"w": (0.5, 0.0), "s": (1.0, 1.0), "b": (0.5, 0.0)}  # kind → (reward, satisfied)


@pytest.fixture(scope="module")
def reward_fn(tmp_path_factory: pytest.TempPathFactory):
    from ltlreward import TrainerReward

    spec = tmp_path_factory.mktemp("spec") / "spec.ltl"
    spec.write_text(SPEC, encoding="utf-8")
    return TrainerReward(spec, grounder="color", fps=8)


# ----------------------------------------------------------------- copies of the call sites (paraphrased)
def flow_grpo_sampling_epoch(reward_fn, batches, prompts, metadata, num_timesteps: int = 3) -> dict:
    """Flow-GRPO's sampling loop: one async reward call per batch (only_strict=True), rewards → float tensors,
    collate on dim 0, "avg" repeated over the timesteps, every key "gathered" (one rank) and logged, advantages
    from "avg"."""
    executor = futures.ThreadPoolExecutor(max_workers=8)
    samples = []
    for images in batches:
        fut = executor.submit(reward_fn, images, prompts, metadata, only_strict=True)
        samples.append({"latents": torch.zeros(len(images), 4), "rewards": fut})
    for sample in samples:
        rewards, reward_metadata = sample["rewards"].result()
        sample["rewards"] = {key: torch.as_tensor(value).float() for key, value in rewards.items()}
        sample["meta"] = reward_metadata
    collated = {"latents": torch.cat([s["latents"] for s in samples], dim=0),
                "rewards": {k: torch.cat([s["rewards"][k] for s in samples]) for k in samples[0]["rewards"]}}
    collated["rewards"]["ori_avg"] = collated["rewards"]["avg"]
    collated["rewards"]["avg"] = collated["rewards"]["avg"].unsqueeze(1).repeat(1, num_timesteps)
    gathered = {key: value.cpu().numpy() for key, value in collated["rewards"].items()}
    logged = {f"reward_{key}": value.mean() for key, value in gathered.items()
              if "_strict_accuracy" not in key and "_accuracy" not in key}
    avg = gathered["avg"]
    advantages = (avg - avg.mean()) / (avg.std() + 1e-4)
    return {"gathered": gathered, "logged": logged, "advantages": advantages, "samples": samples}


def flow_grpo_eval(reward_fn, images, prompts, metadata) -> dict:
    """Flow-GRPO's eval: only_strict=False, every key gathered and concatenated."""
    executor = futures.ThreadPoolExecutor(max_workers=8)
    all_rewards = defaultdict(list)
    rewards, _ = executor.submit(reward_fn, images, prompts, metadata, only_strict=False).result()
    for key, value in rewards.items():
        all_rewards[key].append(torch.as_tensor(value).float().numpy())
    return {key: np.concatenate(v) for key, v in all_rewards.items()}


def multi_score_table(score_fns: dict, weights: dict, images, prompts, metadata) -> dict:
    """Their `multi_score`'s `_fn` over a table of per-reward functions fn(images, prompts, metadata) ->
    (scores, rewards): per-reward details plus the weighted sum "avg"."""
    total, details = [], {}
    for name, weight in weights.items():
        scores, _rewards = score_fns[name](images, prompts, metadata)
        details[name] = scores
        weighted = [weight * s for s in scores]
        total = weighted if not total else [a + b for a, b in zip(total, weighted, strict=True)]
    details["avg"] = total
    return details


def diffusion_nft_epoch(reward_fn, batches, prompts, metadata, attach, num_batches: int = 2) -> list[dict]:
    """DiffusionNFT's sampling + training data flow: async reward, rewards → tensors, the user's mask hook on
    each sample dict, collation (tensors cat on dim 0, dicts per sub-key), advantages from "avg", then every
    key shuffled with one permutation and sliced into training batches."""
    executor = futures.ThreadPoolExecutor(max_workers=8)
    items = []
    for i, images in enumerate(batches):
        items.append({"latents_clean": torch.arange(len(images), dtype=torch.float32)[:, None] + 10 * i,
                      "rewards_future": executor.submit(reward_fn, images, prompts, metadata, only_strict=True)})
    for item in items:
        rewards, reward_metadata = item.pop("rewards_future").result()
        item["rewards"] = {k: torch.as_tensor(v).float() for k, v in rewards.items()}
        attach(item, reward_metadata)
    collated = {k: torch.cat([s[k] for s in items], dim=0) if not isinstance(items[0][k], dict)
                else {sk: torch.cat([s[k][sk] for s in items], dim=0) for sk in items[0][k]} for k in items[0]}
    avg = collated["rewards"]["avg"].numpy()
    collated["advantages"] = torch.from_numpy((avg - avg.mean()) / (avg.std() + 1e-4))
    del collated["rewards"]
    perm = torch.randperm(len(collated["latents_clean"]), generator=torch.Generator().manual_seed(0))
    shuffled = {k: v[perm] for k, v in collated.items()}
    size = len(perm) // num_batches
    return [{k: v[j * size:(j + 1) * size] for k, v in shuffled.items()} for j in range(num_batches)]


# ------------------------------------------------------------------------------------------------- tests
def test_flow_grpo_sampling_and_eval_call_sites(reward_fn) -> None:
    kinds = ["wsb", "sws"]
    out = flow_grpo_sampling_epoch(reward_fn, [videos(k) for k in kinds], ["p"] * 3, [{}, {}, {}])
    flat = "".join(kinds)
    want_r = np.array([EXPECTED[k][0] for k in flat], np.float32)
    want_s = np.array([EXPECTED[k][1] for k in flat], np.float32)
    g = out["gathered"]
    assert set(g) == {"avg", "ori_avg", "ltl", "ltl_satisfied"}
    np.testing.assert_array_equal(g["ori_avg"], want_r)
    np.testing.assert_array_equal(g["avg"], np.repeat(want_r[:, None], 3, axis=1))
    np.testing.assert_array_equal(g["ltl"], want_r)
    np.testing.assert_array_equal(g["ltl_satisfied"], want_s)
    assert out["logged"]["reward_ltl_satisfied"] == pytest.approx(want_s.mean(), abs=1e-7)
    a = (want_r - want_r.mean()) / (want_r.std() + 1e-4)
    np.testing.assert_allclose(out["advantages"][:, 0], a, rtol=1e-6)
    ev = flow_grpo_eval(reward_fn, videos("sb"), ["p", "q"], [{}, {}])
    np.testing.assert_array_equal(ev["ltl"], [1.0, 0.5])


def test_the_reward_equals_reward_model_and_weight_scales_avg(reward_fn) -> None:
    from ltlreward import TrainerReward

    v = videos("wsb")
    direct, _ = reward_fn.model(v)
    scores, meta = reward_fn(v, ["p"] * 3, None)
    np.testing.assert_array_equal(scores["ltl"], direct)
    half = TrainerReward(model=reward_fn.model, name="rule", weight=0.25)
    s2, _ = half(v)
    assert set(s2) == {"avg", "rule", "rule_satisfied"}
    np.testing.assert_array_equal(s2["avg"], 0.25 * direct)
    assert meta["constraint_names"] == ["seen", "dark"]
    np.testing.assert_array_equal(meta["satisfied"]["dark"], [False, True, True])


def test_score_fn_inside_their_multi_score_table(reward_fn) -> None:
    v = videos("ws")
    other = lambda images, prompts, metadata: ([0.25] * len(images), [0.25] * len(images))  # noqa: E731
    details = multi_score_table({"ltl": reward_fn.score_fn, "other": other}, {"ltl": 2.0, "other": 1.0}, v,
                                ["p", "q"], [{}, {}])
    assert details["ltl"] == [0.5, 1.0]
    assert details["avg"] == [2.0 * 0.5 + 0.25, 2.0 * 1.0 + 0.25]


def test_diffusion_nft_carries_the_masks_row_aligned_through_shuffle_and_batching(reward_fn) -> None:
    from ltlreward import attach_masks

    kinds = ["wsb", "bws"]
    batches = diffusion_nft_epoch(reward_fn, [videos(k) for k in kinds], ["p"] * 3, [{}] * 3, attach_masks)
    # each row's mask must belong to its latent: row id = latents_clean (10·batch + index)
    direct = {10 * i + j: reward_fn(videos(k))[1]["violation_masks"][j] for i, k in enumerate(kinds)
              for j in range(3)}
    seen = 0
    for b in batches:
        assert b["violation_masks"].shape == (3, T, H, W) and b["violation_masks"].dtype == torch.float32
        for row, mask in zip(b["latents_clean"][:, 0].tolist(), b["violation_masks"], strict=True):
            np.testing.assert_array_equal(mask.numpy(), direct[int(row)])
            seen += 1
    assert seen == 6
    flat = "".join(kinds)
    sums = {int(r): float(m.sum()) for b in batches for r, m in zip(b["latents_clean"][:, 0], b["violation_masks"],
                                                                      strict=True)}
    for i in range(2):
        for j in range(3):
            k = flat[3 * i + j]
            assert (sums[10 * i + j] == 0.0) == (k == "s")  # only the violating videos carry a mask


def test_images_and_videos_are_told_apart_explicitly(reward_fn) -> None:
    from ltlreward import TrainerReward, as_video_batch

    images = torch.ones(2, 3, H, W)
    with pytest.raises(ValueError, match=r"4-D batch of shape \(2, 3, 32, 32\).*frames_axis=None"):
        reward_fn(images)
    as_images = TrainerReward(model=reward_fn.model, frames_axis=None)
    scores, meta = as_images(images)  # each image a one-frame video: bright seen, dark never → ½
    np.testing.assert_array_equal(scores["ltl"], [0.5, 0.5])
    assert meta["violation_masks"].shape == (2, 1, H, W)
    with pytest.raises(ValueError, match="frames_axis=None means a batch of images"):
        as_images(videos("w"))
    # (B, C, F, H, W) with frames_axis=2 scores like (B, F, C, H, W) with the default
    v = videos("wsb")
    cf = TrainerReward(model=reward_fn.model, frames_axis=2)
    np.testing.assert_array_equal(cf(v.permute(0, 2, 1, 3, 4))[0]["ltl"], reward_fn(v)[0]["ltl"])
    assert as_video_batch(v.to(torch.bfloat16)).dtype == np.float32
    with pytest.raises(ValueError, match="frames_axis must be 1"):
        TrainerReward(model=reward_fn.model, frames_axis=3)


def test_failed_videos_and_options(reward_fn) -> None:
    from ltlreward import TrainerReward, attach_masks

    scores, meta = reward_fn(["/nonexistent/clip.mp4", videos("s")[0].numpy()])  # lists pass through
    np.testing.assert_array_equal(scores["ltl"], [0.0, 1.0])  # failure_reward 0
    assert meta["errors"][0] and meta["errors"][1] is None
    assert meta["violation_masks"].shape == (2, T, H, W)  # the failed video's row is zeros, not missing
    assert float(np.abs(meta["violation_masks"]).sum()) == 0.0
    no_masks = TrainerReward(reward_fn.model.spec, grounder="color", fps=8,
                             masks=False)
    _, m = no_masks(videos("w"))
    with pytest.raises(KeyError, match="made no masks"):
        attach_masks({}, m)
    with pytest.raises(ValueError, match="exactly one of spec"):
        TrainerReward()
    with pytest.raises(ValueError, match="other than 'avg'"):
        TrainerReward(model=reward_fn.model, name="avg")
