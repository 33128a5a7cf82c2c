"""Add each item's task description to a simlabel labels file, for `agree --from-descriptions`.

A simlabel `description` tells how one episode went ("push-v3: the expert with action noise; fails: the
gripper pushes the puck onto the goal does not hold at the end."), which is not a task to compile. This
writes a copy of the labels with `task_description` = the task's own sentence (the `sentence` of its entry
in metaworld_tasks.TASKS / robosuite_tasks.TASKS) and absolute video paths, so the copy can live anywhere.

    python -m benchmarks.simlabel.task_descriptions --labels /work/simdata/natural/labels.jsonl --out /tmp/l.jsonl
    (--labels may also be a directory of <id>.label.json files, read while a set is still being generated)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def sentences() -> dict[str, str]:
    """task id → the task's sentence, capitalised, as a description a user would write."""
    from .metaworld_tasks import TASKS as MW
    from .robosuite_tasks import TASKS as RS

    return {name: t.sentence[0].upper() + t.sentence[1:] + "." for name, t in {**MW, **RS}.items()}


def read_rows(labels: Path) -> tuple[list[dict], Path]:
    """The label rows and the directory their relative video paths start from."""
    if labels.is_dir():
        rows = [json.loads(p.read_text()) for p in sorted(labels.glob("*.label.json"))]
        return rows, labels.parent
    return [json.loads(line) for line in labels.read_text().splitlines() if line.strip()], labels.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args(argv)
    rows, base = read_rows(a.labels)
    said = sentences()
    with a.out.open("w") as f:
        for row in rows:
            row = {**row, "video": str((base / row["video"]).resolve()), "task_description": said[row["task"]]}
            row["spec"] = str(Path(__file__).resolve().parents[2] / row["spec"]) if row.get("spec") else None
            f.write(json.dumps(row) + "\n")
    print(f"{len(rows)} rows written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
