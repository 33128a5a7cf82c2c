"""Per-step cost of each arm of the toy ablation, arms interleaved on identical seeds so machine load cancels.

    PYTHONPATH=. .venv/bin/python benchmarks/creflow_toy/overhead.py --reps 12 --lr 1e-4

Prints the median seconds of one post-training step per arm and CreFlow's overhead over NFT (masks, the
outside anchor and the reflow rows). Uses the checkout's shipped pretrained model (pretrains it in memory if missing; writes nothing).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from creflow_train.toy.bench import pretrained_model
from creflow_train.toy.pretrain import PretrainConfig
from creflow_train.toy.train import RLConfig, measure_overhead
from creflow_train.toy.world import WorldConfig

CACHE = Path(__file__).resolve().parent / "_work"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=12, help="interleaved steps per arm")
    ap.add_argument("--lr", type=float, default=RLConfig.lr)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    world = WorldConfig()
    base = pretrained_model(world, PretrainConfig(), None, shipped=CACHE)
    times = measure_overhead(base, world, replace(RLConfig(), lr=args.lr), reps=args.reps)
    for arm, sec in times.items():
        print(f"{arm:>10}: {sec:.3f} s/step")
    print(f"creflow vs nft: {100 * (times['creflow'] / times['nft'] - 1):+.1f} %")


if __name__ == "__main__":
    main()
