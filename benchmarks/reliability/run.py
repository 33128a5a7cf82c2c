"""The reliability table of issue #18: attacks on `ltlreward score` / `check` / the monitor, with real processes.

    .venv/bin/python benchmarks/reliability/run.py [--rounds 5] [--code DIR] [--out FILE]

Every attack goes through the command line (`python -m ltlreward.cli`) or the public monitor, so the same
script measures any checkout: `--code DIR` puts DIR first on PYTHONPATH (e.g. a worktree of an older
commit) to get the "before" column. Per attack it counts the rounds that failed (a record lost, a duplicate,
a surviving worker, a hang, an untyped error, an FFmpeg log line on stderr) and the records lost over all
rounds (and duplicates and surviving worker processes). Videos: copies of the shipped pick-place examples
(so every record is distinct).

Attacks:
- rewrite+append: a `--resume --retry-failed` run rewrites the file while another run appends 30 records;
- two runs: two `--resume` runs over the same 24 videos at once (a duplicate is a failure);
- kill -9 / SIGTERM / Ctrl-C of `score --workers 2` mid-run, then `--resume`: surviving workers after 3 s,
  Ctrl-C over 2 s, and records lost or duplicated once the resume has finished;
- specs: `F[0,100000000]` monitored on 7 frames, `F[0,1e20]` in `check`, a 1-KB exponential macro chain in
  `check` and in monitoring — each under 20 s and 1 GB of address space, the bound a typed located error;
- bad videos: a PNG renamed .mp4, a header-only mp4, a truncated one, a garbled one, a zero-byte file,
  a text file: each its own failed record, no FFmpeg line on stderr, exit code 1;
- agree: a labelled symlink whose sidecar sits beside the link (auto must ground from it, as `score` does,
  and last_frame must read it), a spec map run from a directory holding a same-named decoy spec (the map's
  own must be used), the vlm baseline with no model (skipped in under 2 s), and a bad spec (one `error:`).
Prints a markdown table and writes the counts as JSON (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SPEC = ROOT / "specs" / "pick_place.ltl"
NAMES = ("pick_place_success", "pick_place_miss", "pick_place_drop")


class Run:
    """The checkout under test and a scratch directory."""

    def __init__(self, code: Path, tmp: Path) -> None:
        self.code, self.tmp = code, tmp
        self.env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}

    def copies(self, name: str, n: int, sidecars: bool = True) -> list[Path]:
        d = self.tmp / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for i in range(n):
            shutil.copy(EXAMPLES / f"{NAMES[i % 3]}.mp4", d / f"v{i:03d}.mp4")
            if sidecars:
                shutil.copy(EXAMPLES / f"{NAMES[i % 3]}.sidecar.json", d / f"v{i:03d}.sidecar.json")
        return sorted(d.glob("*.mp4"))

    def score(self, inputs: list[str], out: Path, *extra: str, grounder: str = "color") -> subprocess.Popen:
        cmd = [sys.executable, "-m", "ltlreward.cli", "score", *inputs, "--spec", str(SPEC), "--grounder",
               grounder, "--out", str(out), "--json", *extra]
        return subprocess.Popen(cmd, env=self.env, cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)  # cwd: not a checkout, so PYTHONPATH decides


def _lines(out: Path) -> list[dict]:
    recs = []
    for line in out.read_text().splitlines() if out.is_file() else []:
        with contextlib.suppress(ValueError):  # a torn last line
            recs.append(json.loads(line))
    return recs


def _wait_lines(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if len(_lines(out)) >= n:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def _lost_and_dupes(out: Path, videos: list[Path]) -> tuple[int, int]:
    counts = Counter(r.get("video") for r in _lines(out))
    want = {str(v.resolve()) for v in videos}
    return len(want - set(counts)), sum(c - 1 for k, c in counts.items() if k in want and c > 1)


def rewrite_while_appending(run: Run) -> tuple[bool, int, int, int]:
    out = run.tmp / "rw.jsonl"
    out.unlink(missing_ok=True)
    failed = run.copies("rw_a", 8, sidecars=False)
    run.score([str(failed[0].parent)], out, grounder="state").wait()  # 8 failed records
    for i, v in enumerate(failed):
        shutil.copy(EXAMPLES / f"{NAMES[i % 3]}.sidecar.json", v.with_name(f"{v.stem}.sidecar.json"))
    others = run.copies("rw_b", 30)
    appender = run.score([str(others[0].parent)], out)
    _wait_lines(out, 11, appender)
    retry = run.score([str(failed[0].parent)], out, "--resume", "--retry-failed", grounder="state")
    retry.wait(), appender.wait()
    lost, dupes = _lost_and_dupes(out, [*failed, *others])
    return lost == 0 and dupes == 0, lost, dupes, 0


def two_runs(run: Run) -> tuple[bool, int, int, int]:
    out = run.tmp / "two.jsonl"
    out.unlink(missing_ok=True)
    videos = run.copies("two", 24)
    a = run.score([str(videos[0].parent)], out, "--resume")
    _wait_lines(out, 1, a)
    b = run.score([str(videos[0].parent)], out, "--resume")
    a.wait(), b.wait()
    lost, dupes = _lost_and_dupes(out, videos)
    return lost == 0 and dupes == 0, lost, dupes, 0


def _alive(pids: list[int]) -> list[int]:
    import psutil

    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def interrupt(run: Run, sig: int, group: bool) -> tuple[bool, int, int, int]:
    """Start `score --workers 2`, send `sig` once 2 records are in, then resume; ok = nothing survives 3 s (Ctrl-C:
    the command ends within 2 s) and the resumed file has every video once."""
    import psutil

    out = run.tmp / f"sig{sig}.jsonl"
    out.unlink(missing_ok=True)
    videos = run.copies(f"sig{sig}", 90, sidecars=False)
    proc = run.score([str(videos[0].parent)], out, "--workers", "2")
    ok = _wait_lines(out, 2, proc)
    kids = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)] if ok else []
    t0 = time.monotonic()
    os.killpg(proc.pid, sig) if group else os.kill(proc.pid, sig)
    proc.wait()
    quick = time.monotonic() - t0 < 2.0
    t0 = time.monotonic()
    while _alive(kids) and time.monotonic() - t0 < 3.0:
        time.sleep(0.05)
    survivors = _alive(kids)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    run.score([str(videos[0].parent)], out, "--workers", "2", "--resume").wait()
    lost, dupes = _lost_and_dupes(out, videos)
    return (ok and not survivors and (quick or sig != signal.SIGINT) and lost == 0 and dupes == 0, lost, dupes,
            len(survivors))


def _budgeted(run: Run, code: str) -> subprocess.CompletedProcess | None:
    prelude = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
               "resource.setrlimit(resource.RLIMIT_CPU, (20, 20))\n")
    try:
        return subprocess.run([sys.executable, "-c", prelude + code], env=run.env, cwd=run.tmp, capture_output=True,
                              text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return None


def spec_attacks(run: Run) -> dict[str, bool]:
    d = run.tmp / "specs"
    d.mkdir(exist_ok=True)
    (d / "big.ltl").write_text('entity a = "a"\nconstraint c: F[0,100000000] visible(a)\n')
    (d / "huge.ltl").write_text('entity a = "a"\nconstraint c: F[0,1e20] visible(a)\n')
    lines = ['entity a = "a"', "let m0(x) := visible(x)", *(f"let m{i}(x) := m{i - 1}(x) & m{i - 1}(x)"
                                                           for i in range(1, 41)), "constraint c: G m40(a)"]
    (d / "exp.ltl").write_text("\n".join(lines) + "\n")
    mon = ("import numpy as np\nfrom ltlreward import monitor, load_spec\nfrom ltlreward.errors import SpecError\n"
           "try:\n    monitor(load_spec({p!r}), {{'visible(a)': np.ones(7)}}); print('ran')\n"
           "except SpecError as e:\n    print('located' if e.line else 'unlocated')\n")
    check = "import sys\nfrom ltlreward.cli import app\nsys.argv = ['ltlreward', 'check', {p!r}]\napp()\n"
    out = {}
    r = _budgeted(run, mon.format(p=str(d / "big.ltl")))
    out["F[0,100000000] on 7 frames"] = r is not None and r.returncode == 0 and "ran" in r.stdout
    r = _budgeted(run, check.format(p=str(d / "huge.ltl")))
    out["F[0,1e20] in check"] = r is not None and r.returncode == 2 and "huge.ltl:2:" in r.stderr
    r = _budgeted(run, check.format(p=str(d / "exp.ltl")))
    out["exponential macros in check"] = r is not None and r.returncode == 2 and "exp.ltl:" in r.stderr
    r = _budgeted(run, mon.format(p=str(d / "exp.ltl")))
    out["exponential macros in monitoring"] = r is not None and r.returncode == 0 and "located" in r.stdout
    return out


def bad_videos(run: Run) -> tuple[bool, int, int, int]:
    import cv2
    import numpy as np

    d = run.tmp / "bad"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    data = (EXAMPLES / "pick_place_success.mp4").read_bytes()
    (d / "photo.mp4").write_bytes(cv2.imencode(".png", np.full((32, 48, 3), 90, np.uint8))[1].tobytes())
    (d / "header_only.mp4").write_bytes(data[:3000])
    (d / "cut.mp4").write_bytes(data[: len(data) // 3])
    g = bytearray(data)
    g[len(data) // 2 : len(data) // 2 + 4000] = bytes(4000)
    (d / "garbled.mp4").write_bytes(bytes(g))
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("not a video\n")
    shutil.copy(EXAMPLES / "pick_place_success.mp4", d / "good.mp4")
    out = d / "r.jsonl"
    proc = run.score([str(d)], out)
    err = proc.communicate()[1]
    recs = {Path(r["video"]).name: r for r in _lines(out)}
    bad = {"photo.mp4", "header_only.mp4", "cut.mp4", "garbled.mp4", "empty.mp4", "text.mp4"}
    ok = (proc.returncode == 1 and all(recs.get(n, {}).get("error") for n in bad)
          and recs.get("good.mp4", {}).get("error", "x") is None
          and not [x for x in err.splitlines() if x.startswith("[")])
    return ok, 7 - len(recs), 0, 0


def _agree(run: Run, *args: str, cwd: Path | None = None) -> tuple[int, dict | None, str]:
    """`ltlreward agree … --json` as a process: exit code, the report (None when stdout is not one) and stderr."""
    cmd = [sys.executable, "-m", "ltlreward.cli", "agree", *args, "--n-boot", "0", "--json"]
    p = subprocess.run(cmd, env=run.env, cwd=cwd or run.tmp, capture_output=True, text=True, timeout=300)
    try:
        return p.returncode, json.loads(p.stdout), p.stderr
    except ValueError:
        return p.returncode, None, p.stderr


def agree_attacks(run: Run) -> dict[str, bool]:
    """Issue #18 items 10-13 through `ltlreward agree`: what score finds, agree finds; maps mean their own files."""
    d = run.tmp / "agree"
    shutil.rmtree(d, ignore_errors=True)
    (d / "real").mkdir(parents=True)
    (d / "links").mkdir()
    shutil.copy(EXAMPLES / "pick_place_success.mp4", d / "real" / "a.mp4")  # pixels: success (colour)
    os.symlink(d / "real" / "a.mp4", d / "links" / "a.mp4")
    shutil.copy(EXAMPLES / "pick_place_miss.sidecar.json", d / "links" / "a.sidecar.json")  # sidecar: a miss
    (d / "sym.jsonl").write_text(json.dumps({"video": "links/a.mp4", "success": False, "task": "pp"}) + "\n")
    out: dict[str, bool] = {}
    code, rep, _ = _agree(run, "--labels", str(d / "sym.jsonl"), "--spec", str(SPEC), "--baseline", "last_frame",
                          cwd=d)
    methods = {m["name"]: m for m in (rep or {}).get("methods", [])}
    out["sidecar beside a symlinked video (auto, last_frame)"] = (
        code == 0 and methods.get("spec", {}).get("confusion", {}).get("tn") == 1
        and methods.get("last_frame", {}).get("skipped") is None)
    (d / "maps" / "specs").mkdir(parents=True)
    (d / "specs").mkdir()
    shutil.copy(SPEC, d / "maps" / "specs" / "task.ltl")
    shutil.copy(ROOT / "specs" / "handover.ltl", d / "specs" / "task.ltl")  # the decoy in the working directory
    shutil.copy(EXAMPLES / "pick_place_success.mp4", d / "maps" / "clip.mp4")
    shutil.copy(EXAMPLES / "pick_place_success.sidecar.json", d / "maps" / "clip.sidecar.json")
    (d / "maps" / "map.json").write_text(json.dumps({"pp": "specs/task.ltl"}))
    (d / "maps" / "l.jsonl").write_text(json.dumps({"video": "clip.mp4", "success": True, "task": "pp"}) + "\n")
    code, rep, _ = _agree(run, "--labels", "maps/l.jsonl", "--spec-map", "maps/map.json", "--no-baselines", cwd=d)
    out["spec map read from a directory holding a same-named decoy"] = (
        code == 0 and rep is not None and rep["methods"][0]["confusion"].get("tp") == 1)
    code, rep, _ = _agree(run, "--labels", str(d / "maps" / "l.jsonl"), "--spec", str(SPEC), "--baseline", "vlm",
                          cwd=d)
    vlm = next((m for m in (rep or {}).get("methods", []) if m["name"] == "vlm"), {})
    out["vlm baseline without a model: skipped before any video"] = (
        code == 0 and bool(vlm.get("skipped")) and vlm.get("seconds", 99) < 2.0)
    (d / "bad.ltl").write_text('entity a = "a"\nconstraint c: F holdin(a)\n')
    code, _, err = _agree(run, "--labels", str(d / "maps" / "l.jsonl"), "--spec", str(d / "bad.ltl"), cwd=d)
    out["a bad spec: one 'error:' prefix"] = code == 2 and err.count("error:") == 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose ltlreward is attacked")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows: dict[str, dict[str, int]] = {}

    def tally(name: str, results: list[tuple[bool, int, int, int]]) -> None:
        rows[name] = {"tried": len(results), "failures": sum(not r[0] for r in results),
                      "records_lost": sum(r[1] for r in results), "duplicates": sum(r[2] for r in results),
                      "surviving_workers": sum(r[3] for r in results)}

    with tempfile.TemporaryDirectory() as tmp:
        run = Run(args.code.resolve(), Path(tmp))
        tally("--retry-failed rewrite while another run appends 30", [rewrite_while_appending(run)
                                                                       for _ in range(args.rounds)])
        tally("two simultaneous --resume runs, 24 videos", [two_runs(run) for _ in range(args.rounds)])
        for label, sig, group in (("kill -9", signal.SIGKILL, False), ("SIGTERM", signal.SIGTERM, False),
                                  ("Ctrl-C (SIGINT to the group)", signal.SIGINT, True)):
            tally(f"{label} of score --workers 2, then --resume", [interrupt(run, sig, group)
                                                                   for _ in range(args.rounds)])
        for name, ok in spec_attacks(run).items():
            rows[f"spec: {name}"] = {"tried": 1, "failures": int(not ok), "records_lost": 0, "duplicates": 0,
                                     "surviving_workers": 0}
        tally("6 kinds of bad video beside a good one", [bad_videos(run)])
        for name, ok in agree_attacks(run).items():
            rows[f"agree: {name}"] = {"tried": 1, "failures": int(not ok), "records_lost": 0, "duplicates": 0,
                                      "surviving_workers": 0}
    print("| attack | tried | failures | records lost | duplicates | surviving workers |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['tried']} | {r['failures']} | {r['records_lost']} | {r['duplicates']} | "
              f"{r['surviving_workers']} |")
    if args.out:
        args.out.write_text(json.dumps({"code": str(args.code), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
