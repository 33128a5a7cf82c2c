"""Grounder registry: names, errors that list the options, lazy imports, `auto` resolution."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ltlreward.errors import GroundingError
from ltlreward.grounding import (
    OBSERVATION_FIELDS,
    Grounder,
    available_grounders,
    find_sidecar,
    get_grounder,
    register_grounder,
    resolve_auto,
    sidecar_path_for,
)
from ltlreward.grounding.backends.color import ColorGrounder
from ltlreward.grounding.backends.state import StateGrounder
from ltlreward.spec.ast import Entity
from ltlreward.video import Video, read_video

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ENTS = (Entity("bottle", "red bottle"), Entity("left", "left gripper", "gripper", (("color", "blue"),)),
        Entity("right", "right gripper", "gripper", (("color", "green"),)))


def test_available_and_get():
    names = available_grounders()
    assert names[0] == "auto" and {"color", "state"} <= set(names) and list(names[1:]) == sorted(names[1:])
    g = get_grounder("color", downsample=1, masks=False)
    assert isinstance(g, ColorGrounder) and g.downsample == 1 and g.masks is False
    assert isinstance(get_grounder("state"), StateGrounder)
    assert isinstance(get_grounder("colour"), ColorGrounder)  # alias
    for name in ("color", "state", "auto"):
        g = get_grounder(name)
        assert isinstance(g, Grounder) and g.name == name and g.provides <= set(OBSERVATION_FIELDS)


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(GroundingError) as e:
        get_grounder("sam9")
    assert str(e.value) == f"unknown grounder 'sam9'; available: {', '.join(available_grounders())}"
    assert "auto, color" in str(e.value)


def test_bad_options_are_a_grounding_error():
    with pytest.raises(GroundingError, match=r"bad options for grounder 'color': .*unexpected keyword"):
        get_grounder("color", nonsense=3)


def test_register_validates_target_and_missing_packages_are_reported():
    with pytest.raises(ValueError, match=r"package\.module:ClassName"):
        register_grounder("x", "no_colon")
    register_grounder("fancy", "ltlreward_not_installed.fancy:Fancy")
    try:
        assert "fancy" in available_grounders()
        with pytest.raises(GroundingError, match=r"grounder 'fancy' needs a package that is not installed"):
            get_grounder("fancy")
    finally:
        from ltlreward.grounding import registry

        registry._REGISTRY.pop("fancy")


def test_sidecar_convention(tmp_path):
    assert sidecar_path_for("/data/run1/clip.mp4") == Path("/data/run1/clip.sidecar.json")
    video = tmp_path / "clip.mp4"
    assert find_sidecar(video) is None and resolve_auto(video) == "color"
    (tmp_path / "clip.sidecar.json").write_text("{}")
    assert find_sidecar(video) == tmp_path / "clip.sidecar.json"
    assert resolve_auto(video) == "state"
    assert resolve_auto(tmp_path / "other.mp4", sidecar=tmp_path / "clip.sidecar.json") == "state"
    assert resolve_auto(None) == "color"


def test_auto_grounds_examples_with_state_and_memory_frames_with_color():
    video = read_video(EXAMPLES / "handover_success.mp4")
    auto = get_grounder("auto")
    assert auto.ground(video, ENTS).source == "state"
    memory = Video(video.frames.copy(), fps=video.fps)  # no path → no sidecar → colour
    obs = auto.ground(memory, ENTS)
    assert obs.source == "color"
    assert obs.meta["provides"] == ["boxes", "centers", "gripper_opening", "masks", "visibility"]


def test_importing_grounding_does_not_import_backends_or_cv2():
    code = ("import sys, ltlreward.grounding, ltlreward.grounding.backends.state;"
            "bad = [m for m in ('cv2', 'ltlreward.grounding.backends.color', 'torch', 'av', 'decord')"
            " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_grounder_protocol_is_structural():
    class Mine:
        name = "mine"
        provides = frozenset({"centers"})

        def ground(self, video, entities, *, quoted=(), sidecar=None):
            return None

    assert isinstance(Mine(), Grounder)
    assert not isinstance(np.zeros(1), Grounder)


def test_auto_passes_options_to_the_backends_that_take_them():
    auto = get_grounder("auto", downsample=1, color={"smooth": 1}, strict_frames=False)
    assert auto.options["color"] == {"downsample": 1, "smooth": 1}
    assert auto.options["state"] == {"strict_frames": False}
    color = auto.backend_for(None)
    assert isinstance(color, ColorGrounder) and color.downsample == 1 and color.smooth == 1
    with pytest.raises(GroundingError, match=r"bad options for grounder 'auto': no backend takes 'bogus'"):
        get_grounder("auto", bogus=1)


def test_auto_picks_configured_model_backends(tmp_path, monkeypatch):
    from ltlreward.grounding.registry import configured_model_backend

    monkeypatch.delenv("LTLREWARD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./ltlreward.toml
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/ltlreward/ltlreward.toml
    assert configured_model_backend() is None
    assert resolve_auto(None) == "color"
    assert resolve_auto(None, models={"grounding_dino": "/m/gd", "sam2": "/m/s2"}) == "gdino-sam2"
    assert resolve_auto(None, models={"owlv2": "/m/o", "sam2": "/m/s2", "vlm": "/m/v"}) == "owlv2+vlm"
    assert resolve_auto(None, models={"vlm": "/m/v"}) == "vlm"
    assert resolve_auto(None, models={"sam2": "/m/s2"}) == "color"  # a tracker alone cannot find entities
    cfg = tmp_path / "ltlreward.toml"
    cfg.write_text('[models]\nsam3 = "/m/sam3"\n')
    assert resolve_auto(None) == "sam3"  # found in the working directory
    assert resolve_auto(None, sidecar=tmp_path / "x.sidecar.json") == "state"  # a sidecar still wins
    g = get_grounder("auto", models={"grounding_dino": "/m/gd", "sam2": "/m/s2"})
    assert g.model_backend == "gdino-sam2"
    assert g.options["gdino-sam2"]["models"] == {"grounding_dino": "/m/gd", "sam2": "/m/s2"}
    assert "models" not in g.options["state"] and "models" not in g.options["color"]
    assert type(g.backend_for(EXAMPLES / "handover_success.mp4")).__name__ == "StateGrounder"
    assert type(g.backend_for(tmp_path / "clip.mp4")).__name__ == "GdinoSam2Grounder"


# ------------------------------------------------------------------------------------------ metadata
def test_every_entry_has_metadata_and_classes_provide_what_is_registered():
    from ltlreward.grounding.registry import GROUNDERS, GrounderInfo, grounder_info

    assert GROUNDERS.aliases() == {"sim": "state", "colour": "color"}
    for name in available_grounders():
        info = grounder_info(name)
        assert isinstance(info, GrounderInfo) and info.doc and set(info.provides) <= set(OBSERVATION_FIELDS)
        cls = GROUNDERS.get(name)
        parts = getattr(cls, "part_classes", ())
        have = frozenset().union(*(p.provides for p in parts)) if parts else cls.provides
        assert have == frozenset(info.provides), name
        assert (info.extra == "models") == cls.__module__.startswith("ltlreward.grounding.backends.models"), name
    assert grounder_info("sim") is grounder_info("state") and grounder_info("state").quoted
    assert not grounder_info("color").quoted and grounder_info("vlm").quoted
    with pytest.raises(ValueError, match="unknown Observations field"):
        GrounderInfo("x", ("depth",))


def test_model_pipelines_for_auto_come_from_the_roles_in_the_registry():
    from ltlreward.grounding.registry import _model_pipelines

    assert _model_pipelines() == [("gdino-sam2", ("grounding_dino", "sam2")), ("owlv2", ("owlv2", "sam2")),
                                  ("sam3", ("sam3",))]
    for name, _ in _model_pipelines():
        assert f"{name}+vlm" in available_grounders()


def test_register_rejects_taken_names_unless_replacing():
    from ltlreward.grounding.registry import GROUNDERS, GrounderInfo, grounder_info

    with pytest.raises(GroundingError, match="grounder 'color' is already registered"):
        register_grounder("color", "pkg.mod:Other")
    with pytest.raises(GroundingError, match="grounder 'sim' is already registered"):
        register_grounder("mine", "pkg.mod:Mine", aliases=("sim",))
    meta = GrounderInfo("my backend", ("centers",))
    register_grounder("mine", "ltlreward.grounding.backends.color:ColorGrounder", aliases=("my",), meta=meta)
    try:
        assert grounder_info("my") is meta and isinstance(get_grounder("my"), ColorGrounder)
        register_grounder("mine", "ltlreward.grounding.backends.state:StateGrounder", replace=True)
        assert isinstance(get_grounder("mine"), StateGrounder) and "my" not in GROUNDERS
    finally:
        assert GROUNDERS.pop("mine") == "ltlreward.grounding.backends.state:StateGrounder"
    assert "mine" not in available_grounders() and GROUNDERS.pop("mine", "absent") == "absent"


def test_describe_and_the_grounders_command_import_no_backend():
    code = ("import json, sys; from typer.testing import CliRunner; from ltlreward.cli import app;"
            "from ltlreward.grounding.registry import describe_grounders;"
            "out = CliRunner().invoke(app, ['grounders', '--json']);"
            "assert out.exit_code == 0 and [json.loads(x) for x in out.stdout.splitlines()] == describe_grounders(), out.output;"
            "text = CliRunner().invoke(app, ['grounders'], env={'COLUMNS': '250'}).stdout;"
            "assert all(n in text for n in ('color (colour)', 'state (sim)', 'sam3+vlm', 'weights: owlv2, sam2'));"
            "bad = [m for m in ('cv2', 'torch', 'transformers') if m in sys.modules]"
            "+ [m for m in sys.modules if m.startswith('ltlreward.grounding.backends.')];"
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_describe_rows_carry_the_metadata():
    from ltlreward.grounding.registry import describe_grounders

    rows = {r["name"]: r for r in describe_grounders()}
    assert list(rows) == list(available_grounders())
    assert rows["state"] == {
        "name": "state", "aliases": ["sim"], "doc": rows["state"]["doc"],
        "provides": ["atoms", "boxes", "centers", "contacts", "gripper_opening", "masks", "positions", "visibility"],
        "extra": "", "models": [], "quoted": True, "target": "ltlreward.grounding.backends.state:StateGrounder"}
    assert rows["gdino-sam2+vlm"]["models"] == ["grounding_dino", "sam2", "vlm"]
    assert rows["gdino-sam2+vlm"]["extra"] == "models" and rows["gdino-sam2+vlm"]["quoted"]
