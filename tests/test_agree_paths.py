"""Where `agree` finds things (issue #18, items 10 and 11): sidecars beside symlinked videos exactly as `score`
finds them, and relative paths in spec maps and label files read from the file's own folder, not the cwd."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from ltlreward.agree import agreement, load_labels, load_spec_map, resolve_path
from ltlreward.agree_cli import run_agree

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES, SPECS = ROOT / "examples", ROOT / "specs"


def _symlinked_set(tmp_path):
    """links/a.mp4 → real/a.mp4 (the pick-place success clip), with the *miss* episode's sidecar beside the
    link only: the sidecar says the block ends off the plate (state: fail), the pixels say success (colour)."""
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    shutil.copy(EXAMPLES / "pick_place_success.mp4", tmp_path / "real" / "a.mp4")
    os.symlink(tmp_path / "real" / "a.mp4", tmp_path / "links" / "a.mp4")
    shutil.copy(EXAMPLES / "pick_place_miss.sidecar.json", tmp_path / "links" / "a.sidecar.json")
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"video": "links/a.mp4", "success": False, "task": "pp"}) + "\n")
    return labels


def test_labels_keep_the_symlinked_path_so_the_sidecar_beside_it_is_found(tmp_path):
    labels = _symlinked_set(tmp_path)
    (item,) = load_labels(labels)
    assert item.video == str(tmp_path / "links" / "a.mp4")  # the link, not its target
    rep = agreement([item], grounder="auto", spec=str(SPECS / "pick_place.ltl"), baselines=["last_frame"], n_boot=0)
    spec, last = rep.methods
    # auto grounded from the sidecar beside the link (state), so the verdict is the sidecar's: not satisfied
    assert spec.n == 1 and spec.confusion == {"tp": 0, "fp": 0, "fn": 0, "tn": 1}
    assert any(n.startswith("spec: grounder auto chose state for 1 video(s)") for n in rep.notes), rep.notes
    assert last.skipped is None and last.n == 1  # the last-frame baseline reads the same sidecar


def test_agree_and_score_choose_the_same_backend_for_a_symlinked_video(tmp_path, capsys):
    from ltlreward.score_cli import run_score

    labels = _symlinked_set(tmp_path)
    assert run_score([str(tmp_path / "links" / "a.mp4")], str(SPECS / "pick_place.ltl"), json_out=True) == 0
    (rec,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rec["grounder"] == "state" and rec["satisfied"] is False
    assert run_agree([labels], spec=str(SPECS / "pick_place.ltl"), baselines=[], n_boot=0, json_output=True) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["methods"][0]["confusion"]["tn"] == 1  # the same verdict as score's
    assert f"state for 1 video(s) ({rec['grounder_reason']})" in " ".join(rep["notes"])


# ------------------------------------------------------------------------------------------ item 11
def _project_with_decoys(tmp_path):
    """proj/maps/map.json → specs/handover.ltl (proj/maps/specs/handover.ltl), and a working directory
    proj/ holding a same-named decoy specs/handover.ltl and a decoy clip.mp4."""
    proj, maps = tmp_path / "proj", tmp_path / "proj" / "maps"
    (maps / "specs").mkdir(parents=True)
    (proj / "specs").mkdir()
    shutil.copy(SPECS / "pick_place.ltl", maps / "specs" / "handover.ltl")  # the map's own file
    shutil.copy(SPECS / "handover.ltl", proj / "specs" / "handover.ltl")  # the decoy in the cwd
    (maps / "map.json").write_text(json.dumps({"pp": "specs/handover.ltl"}))
    shutil.copy(EXAMPLES / "pick_place_success.mp4", maps / "clip.mp4")
    shutil.copy(EXAMPLES / "pick_place_success.sidecar.json", maps / "clip.sidecar.json")
    shutil.copy(EXAMPLES / "handover_success.mp4", proj / "clip.mp4")  # decoy video
    (maps / "labels.jsonl").write_text(json.dumps({"video": "clip.mp4", "success": True, "task": "pp",
                                                   "spec": "specs/handover.ltl"}) + "\n")
    return proj, maps


def test_spec_map_and_label_paths_resolve_against_their_own_folder_not_the_cwd(tmp_path, monkeypatch):
    proj, maps = _project_with_decoys(tmp_path)
    monkeypatch.chdir(proj)
    assert load_spec_map("maps/map.json") == {"pp": str(maps / "specs" / "handover.ltl")}
    (item,) = load_labels("maps/labels.jsonl")
    assert item.video == str(maps / "clip.mp4") and item.spec == str(maps / "specs" / "handover.ltl")
    # the cwd is still the last resort for a path found nowhere near the file
    (proj / "only_here.ltl").write_text("")
    assert resolve_path("only_here.ltl", maps) == proj / "only_here.ltl"
    assert resolve_path("nowhere.ltl", maps) is None


def test_agree_from_another_cwd_scores_with_the_maps_spec(tmp_path, monkeypatch, capsys):
    proj, _maps = _project_with_decoys(tmp_path)
    monkeypatch.chdir(proj)
    code = run_agree(["maps/labels.jsonl"], spec_map="maps/map.json", grounder="state", baselines=[], n_boot=0,
                     json_output=True)
    rep = json.loads(capsys.readouterr().out)
    # the decoy (handover, needs a bottle) would fail every video; the map's pick-place spec scores the clip
    assert code == 0 and rep["methods"][0]["n"] == 1 and rep["methods"][0]["confusion"]["tp"] == 1


@pytest.mark.parametrize("where", ["labels", "map"])
def test_a_missing_path_says_where_it_was_looked_for(tmp_path, where):
    from ltlreward.agree import LabelError

    (tmp_path / "map.json").write_text(json.dumps({"t": "gone.ltl"}))
    (tmp_path / "l.jsonl").write_text(json.dumps({"video": "gone.mp4", "label": 1}) + "\n")
    with pytest.raises(LabelError) as e:
        load_labels(tmp_path / "l.jsonl") if where == "labels" else load_spec_map(tmp_path / "map.json")
    assert f"from {tmp_path}, its parent folders, then the working directory" in str(e.value)
