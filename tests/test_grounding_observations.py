"""Observations on-disk format: round trip and the errors of damaged files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ltlreward.errors import GroundingError
from ltlreward.grounding.observations import (
    OBS_FORMAT_VERSION,
    Observations,
    load_observations,
    save_observations,
)


def _obs(with_optional: bool = True) -> Observations:
    rng = np.random.default_rng(0)
    E, T, H, W = 2, 5, 6, 8
    boxes = rng.uniform(0, 8, (E, T, 4)).astype(np.float32)
    boxes[1, 2] = np.nan
    return Observations(
        entities=("bottle", "left"), n_frames=T, height=H, width=W, fps=10.0,
        boxes=boxes, centers=rng.uniform(0, 8, (E, T, 2)).astype(np.float32),
        visibility=np.array([[1, 1, 0.5, 0, 1], [1, 0, 0, 1, 1]], np.float32),
        masks=rng.uniform(size=(E, T, H, W)) > 0.5 if with_optional else None,
        positions=rng.normal(size=(E, T, 3)).astype(np.float32) if with_optional else None,
        gripper_opening={"left": np.linspace(0, 1, T, dtype=np.float32)} if with_optional else {},
        contacts={("bottle", "left"): np.array([0, 1, 1, 0, 0], bool)} if with_optional else {},
        atoms={'"the cap is on"': np.array([0.1, 0.2, 0.9, 1, 0], np.float32)} if with_optional else {},
        source="state", meta={"sidecar": "x.json", "n": np.int64(3), "frames": np.arange(3)},
    )


@pytest.mark.parametrize("with_optional", [True, False])
def test_round_trip_keeps_every_field(tmp_path, with_optional):
    obs = _obs(with_optional)
    json_path, npz_path = save_observations(obs, tmp_path / "clip")
    assert (json_path.name, npz_path.name) == ("clip.json", "clip.npz")
    header = json.loads(json_path.read_text())
    assert header["version"] == OBS_FORMAT_VERSION
    assert header["entities"] == ["bottle", "left"]
    for path in (tmp_path / "clip", json_path, npz_path):  # stem or either file
        back = load_observations(path)
        assert back.entities == obs.entities and back.n_frames == 5 and (back.height, back.width) == (6, 8)
        assert back.fps == 10.0 and back.source == "state"
        np.testing.assert_array_equal(back.boxes, obs.boxes)
        np.testing.assert_array_equal(back.centers, obs.centers)
        np.testing.assert_array_equal(back.visibility, obs.visibility)
        assert back.meta == {"sidecar": "x.json", "n": 3, "frames": [0, 1, 2]}
        if with_optional:
            np.testing.assert_array_equal(back.masks, obs.masks)
            np.testing.assert_array_equal(back.positions, obs.positions)
            np.testing.assert_array_equal(back.gripper_opening["left"], obs.gripper_opening["left"])
            np.testing.assert_array_equal(back.contacts[("bottle", "left")], [0, 1, 1, 0, 0])
            np.testing.assert_array_equal(back.atoms['"the cap is on"'], obs.atoms['"the cap is on"'])
            assert back.masks.dtype == bool and back.contacts[("bottle", "left")].dtype == bool
        else:
            assert back.masks is None and back.positions is None
            assert back.gripper_opening == {} and back.contacts == {} and back.atoms == {}


def test_wrong_version_names_file_and_field(tmp_path):
    json_path, _ = save_observations(_obs(), tmp_path / "clip")
    header = json.loads(json_path.read_text())
    header["version"] = 99
    json_path.write_text(json.dumps(header))
    with pytest.raises(GroundingError, match=r"clip\.json: version: unsupported observations format version 99"):
        load_observations(tmp_path / "clip")


def test_shape_mismatch_names_npz_and_array(tmp_path):
    obs = _obs()
    _, npz_path = save_observations(obs, tmp_path / "clip")
    arrays = dict(np.load(npz_path))
    arrays["centers"] = arrays["centers"][:, :4]
    np.savez_compressed(npz_path, **arrays)
    with pytest.raises(GroundingError, match=r"clip\.npz: centers: expected shape \(2, 5, 2\), got \(2, 4, 2\)"):
        load_observations(npz_path)


def test_missing_array_and_missing_file(tmp_path):
    _, npz_path = save_observations(_obs(), tmp_path / "clip")
    arrays = dict(np.load(npz_path))
    del arrays["contacts.0"]
    np.savez_compressed(npz_path, **arrays)
    with pytest.raises(GroundingError, match=r"clip\.npz: contacts\.0: array missing"):
        load_observations(tmp_path / "clip")
    with pytest.raises(GroundingError, match=r"nothing\.json: observations file not found"):
        load_observations(tmp_path / "nothing")


def test_unserialisable_meta_is_a_grounding_error(tmp_path):
    obs = _obs()
    obs.meta = {"bad": object()}
    with pytest.raises(GroundingError, match=r"meta\.bad holds a object"):
        save_observations(obs, tmp_path / "clip")
