"""A procedural pick-and-place video world small enough to train a flow model on CPU.

A white gripper square reaches a red block, carries it to a green goal zone (bottom right) and stays there;
a blue and a yellow distractor must not move. Frame 0 (the layout) is the prompt. Demonstrations come in
four outcomes: success, drop (the block is released half way), wrong (delivered to the wrong place) and bump
(a distractor gets pushed). Positions snap to a `grid` (2 by default: every 2×2 object fills exactly one
cell of the model's 2×2 pixel-unshuffle latent, so rendering is easy and the model's failures are the task's,
not blur). Rendering is vectorised over batch and time in torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# RGB palette in [0, 1]; drawing order = order here (later covers earlier)
PALETTE: dict[str, tuple[float, float, float]] = {
    "background": (0.1, 0.1, 0.1),
    "goal": (0.1, 0.75, 0.1),
    "blue": (0.1, 0.25, 0.95),
    "yellow": (0.95, 0.85, 0.1),
    "block": (0.95, 0.1, 0.1),
    "gripper": (0.95, 0.95, 0.95),
}
OBJECT_SIZE = 2  # block, gripper and distractors are 2×2 squares
GOAL_SIZE = 6  # the goal zone is 6×6; a delivered block sits in its centre, 2 px from every edge
OUTCOMES = ("success", "drop", "wrong", "bump")


@dataclass(frozen=True)
class WorldConfig:
    """Sizes of the world and the demonstration mixture (probabilities of OUTCOMES)."""

    frames: int = 8
    size: int = 16
    mix: tuple[float, float, float, float] = (0.3, 0.25, 0.2, 0.25)
    grid: int = 2  # object positions are multiples of this

    @property
    def goal_box(self) -> tuple[int, int]:
        """Top-left (row, col) of the goal zone."""
        corner = self.size - GOAL_SIZE
        return (corner, corner)

    @property
    def goal_target(self) -> tuple[int, int]:
        """Top-left (row, col) of a block delivered to the centre of the goal zone."""
        gr, gc = self.goal_box
        off = (GOAL_SIZE - OBJECT_SIZE) // 2
        return (gr + off, gc + off)

    @property
    def keyframes(self) -> tuple[int, int, int]:
        """Frames at which the grasp happens, the drop happens (drop outcome) and the delivery ends."""
        last = self.frames - 1
        grasp, end = (3 * last) // 7, (6 * last) // 7
        return grasp, (grasp + end) // 2, end


@dataclass
class Episode:
    """Per-frame top-left positions (B, T, 2) (row, col) of every object, plus layout and outcome."""

    gripper: torch.Tensor
    block: torch.Tensor
    blue: torch.Tensor
    yellow: torch.Tensor
    outcome: torch.Tensor  # (B,) long index into OUTCOMES


def _grid_randint(lo: int, hi: int, n: int, grid: int, gen: torch.Generator) -> torch.Tensor:
    """n random multiples of `grid` in [lo, hi]."""
    import torch

    return torch.randint(-(-lo // grid), hi // grid + 1, (n,), generator=gen) * grid


def sample_layouts(n: int, cfg: WorldConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random initial (row, col) of gripper, block and the two distractors, in regions that keep paths apart."""
    import torch

    s = cfg.size

    def rnd(lo: int, hi: int) -> torch.Tensor:
        return _grid_randint(lo, hi, n, cfg.grid, gen)

    return {
        "gripper": torch.stack([rnd(0, 1), rnd(1, 6)], dim=1),
        "block": torch.stack([rnd(4, 7), rnd(0, 8)], dim=1),
        "blue": torch.stack([rnd(2, 3), rnd(s - 6, s - 4)], dim=1),
        "yellow": torch.stack([rnd(s - 4, s - 3), rnd(2, 4)], dim=1),
    }


def _lerp_path(
    start: torch.Tensor, end: torch.Tensor, f0: int, f1: int, frames: int, grid: int = 1
) -> torch.Tensor:
    """(B, T, 2) positions: `start` before f0, linear from f0 to f1 (rounded to the grid), `end` after f1."""
    import torch

    f = torch.arange(frames, dtype=torch.float32)
    a = ((f - f0) / max(f1 - f0, 1)).clamp(0, 1)[None, :, None]
    pos = start[:, None].float() * (1 - a) + end[:, None].float() * a
    return (torch.round(pos / grid) * grid).long()


def make_episodes(
    layouts: dict[str, torch.Tensor], outcome: torch.Tensor, cfg: WorldConfig, gen: torch.Generator
) -> Episode:
    """Object trajectories for the given layouts and outcomes (indices into OUTCOMES)."""
    import torch

    n, frames, g = outcome.shape[0], cfg.frames, cfg.grid
    grasp, drop, end = cfg.keyframes
    tr, tc = cfg.goal_target
    block0 = layouts["block"]
    above = torch.tensor([-OBJECT_SIZE, 0])  # gripper sits right above the block it holds
    goal_target = torch.tensor([tr, tc]).expand(n, 2)
    # wrong place: up and left of the zone (the block ends fully outside it, clear of the yellow distractor)
    gc = cfg.goal_box[1]
    wrong_cols = _grid_randint(2, gc - OBJECT_SIZE, n, g, gen)
    wrong_target = torch.stack([torch.full((n,), tr - 2 * OBJECT_SIZE), wrong_cols], 1)
    target = torch.where((outcome == OUTCOMES.index("wrong"))[:, None], wrong_target, goal_target)
    reach = _lerp_path(layouts["gripper"], block0 + above, 0, grasp, frames, g)
    carry_block = _lerp_path(block0, target, grasp, end, frames, g)
    gripper = torch.where(torch.arange(frames)[None, :, None] <= grasp, reach, carry_block + above)
    block = carry_block.clone()
    is_drop = outcome == OUTCOMES.index("drop")
    block[is_drop, drop:] = carry_block[is_drop, drop][:, None]
    blue, yellow = (layouts[k][:, None].expand(n, frames, 2).clone() for k in ("blue", "yellow"))
    is_bump = outcome == OUTCOMES.index("bump")
    which = torch.randint(0, 2, (n,), generator=gen).bool()
    step = max(g, 1)
    for sel, obj, shift in ((is_bump & which, blue, (-2, step)), (is_bump & ~which, yellow, (step, -2))):
        obj[sel, drop:] = obj[sel, drop:] + torch.tensor(shift)
    return Episode(gripper, block, blue, yellow, outcome)


def render(ep: Episode, cfg: WorldConfig) -> torch.Tensor:
    """Draw episodes as float videos (B, T, 3, H, W) in [0, 1]."""
    import torch

    n, frames, s = ep.block.shape[0], cfg.frames, cfg.size
    rows = torch.arange(s)[None, None, :, None]
    cols = torch.arange(s)[None, None, None, :]

    def box(pos: torch.Tensor, size: int) -> torch.Tensor:  # (B, T, 2) -> (B, T, H, W) bool
        r, c = pos[..., 0, None, None], pos[..., 1, None, None]
        return (rows >= r) & (rows < r + size) & (cols >= c) & (cols < c + size)

    video = torch.tensor(PALETTE["background"]).view(1, 1, 3, 1, 1).expand(n, frames, 3, s, s).clone()
    goal = torch.tensor(cfg.goal_box).expand(n, frames, 2)
    for name, pos, size in (
        ("goal", goal, GOAL_SIZE), ("blue", ep.blue, OBJECT_SIZE), ("yellow", ep.yellow, OBJECT_SIZE),
        ("block", ep.block, OBJECT_SIZE), ("gripper", ep.gripper, OBJECT_SIZE),
    ):
        m = box(pos, size)[:, :, None]  # (B, T, 1, H, W)
        video = torch.where(m, torch.tensor(PALETTE[name]).view(1, 1, 3, 1, 1), video)
    return video


def sample_outcomes(n: int, cfg: WorldConfig, gen: torch.Generator) -> torch.Tensor:
    """Outcome indices drawn from the demonstration mixture."""
    import torch

    return torch.multinomial(torch.tensor(cfg.mix), n, replacement=True, generator=gen)


def demonstrations(n: int, cfg: WorldConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n rendered demonstration videos (B, T, 3, H, W) and their outcome indices."""
    outcome = sample_outcomes(n, cfg, gen)
    ep = make_episodes(sample_layouts(n, cfg, gen), outcome, cfg, gen)
    return render(ep, cfg), outcome


def first_frames(layouts: dict[str, torch.Tensor], cfg: WorldConfig, gen: torch.Generator) -> torch.Tensor:
    """The prompt images (B, 3, H, W) for layouts (frame 0 is the same for every outcome)."""
    import torch

    n = layouts["block"].shape[0]
    ep = make_episodes(layouts, torch.zeros(n, dtype=torch.long), cfg, gen)
    return render(ep, cfg)[:, 0]
