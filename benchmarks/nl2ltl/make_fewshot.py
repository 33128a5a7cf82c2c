"""Write the llm backend's few-shot pool (ltlreward/data/nl_fewshot.jsonl) from the development set.

An example is a description of benchmarks/nl2ltl/cases.jsonl (the development set; never a held-out set)
whose rules compilation run.py found equivalent to its hand-written reference, with the rules parser's IR
rendered as IR text (ltlreward.nl.irtext). Descriptions the rules backend cannot parse, or compiles to a
spec that differs from the reference, are left out.

    .venv/bin/python benchmarks/nl2ltl/run.py --json /tmp/rules_dev.json          # rules, development set
    .venv/bin/python benchmarks/nl2ltl/make_fewshot.py --rules-json /tmp/rules_dev.json --out PATH
    # the shipped pool: --out ltlreward/data/nl_fewshot.jsonl (nothing tracked is written by default)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from ltlreward.nl.errors import NLError  # noqa: E402
from ltlreward.nl.irtext import render_ir_text  # noqa: E402
from ltlreward.nl.llm import FEWSHOT_PATH  # noqa: E402
from ltlreward.nl.parser import parse_text  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=str(HERE / "cases.jsonl"))
    ap.add_argument("--rules-json", required=True, help="run.py --json output of the rules backend on --cases")
    ap.add_argument("--out", required=True, help=f"where the pool goes (the shipped one: {FEWSHOT_PATH})")
    args = ap.parse_args(argv)
    if "heldout" in Path(args.cases).name:
        raise SystemExit("few-shot examples come from the development set only, not a held-out set")
    equivalent = {o["id"] for o in json.loads(Path(args.rules_json).read_text()) if o["equivalent"]}
    rows = []
    for line in Path(args.cases).read_text().splitlines():
        case = json.loads(line)
        if case["id"] not in equivalent:
            continue
        try:
            rows.append({"id": case["id"], "text": case["text"], "ir": render_ir_text(parse_text(case["text"]))})
        except NLError as exc:  # an IR field IR text has no syntax for yet: left out, and said so
            print(f"skipped {case['id']}: {str(exc).splitlines()[0]}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} examples written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
