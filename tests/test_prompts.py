"""Prompts files (ltlreward/grounding/prompts.py): the format, its scaling to a video, and one clear error per
kind of mistake, naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ltlreward.errors import GroundingError
from ltlreward.grounding.prompts import find_prompts, load_prompts, parse_prompts, prompts_path_for

NAMES = ("block", "gripper", "goal")


def write(tmp_path: Path, obj: dict, name: str = "clip.prompts.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return p


def good(**entities) -> dict:
    return {"version": 1, "frame": 0, "entities": entities or {"block": {"box": [10, 20, 30, 40]}}}


def test_box_mask_points_and_static_regions(tmp_path):
    mask = np.zeros((48, 64), np.uint8)
    mask[5:9, 40:50] = 255
    cv2.imwrite(str(tmp_path / "g.png"), mask)
    p = load_prompts(write(tmp_path, good(block={"box": [10, 20, 30, 40]}, gripper={"mask": "g.png"},
                                          goal={"points": [[2, 3], [6, 9]], "static": True})))
    r = p.regions(NAMES, 48, 64)
    np.testing.assert_array_equal(r["block"].box, [10, 20, 30, 40])
    assert r["block"].mask.sum() == 20 * 20 and not r["block"].static
    np.testing.assert_array_equal(r["gripper"].box, [40, 5, 50, 9])
    assert r["gripper"].mask.sum() == 40 and r["gripper"].shape == "mask"
    np.testing.assert_array_equal(r["goal"].box, [2, 3, 7, 10])  # the points' extent, exclusive ends
    assert r["goal"].static and r["goal"].points.tolist() == [[2, 3], [6, 9]]
    assert p.frame == 0 and p.camera is None and len(p.digest) == 64


def test_coordinates_of_another_resolution_are_scaled(tmp_path):
    p = load_prompts(write(tmp_path, {**good(block={"box": [10, 20, 30, 40]}), "width": 64, "height": 48}))
    r = p.regions(NAMES, 96, 128)  # the video is twice the prompts' resolution
    np.testing.assert_array_equal(r["block"].box, [20, 40, 60, 80])


def test_camera_uses_the_sidecar_parser(tmp_path):
    cam = {"intrinsics": [[300, 0, 112], [0, 300, 112], [0, 0, 1]],
           "extrinsics": [[1, 0, 0, 0], [0, 0, -1, 0.2], [0, 1, 0, 2.0], [0, 0, 0, 1]], "width": 224, "height": 224}
    p = load_prompts(write(tmp_path, {**good(), "camera": cam}))
    assert p.camera.width == 224 and p.camera.K[0, 0] == 300
    cam["intrinsics"][2] = [0, 1, 1]
    f = write(tmp_path, {**good(), "camera": cam})
    with pytest.raises(GroundingError, match=rf"{f}: camera.intrinsics\[2\]: expected \[0, 0, 1\]"):
        load_prompts(f)


def test_unknown_entity_names_file_and_field(tmp_path):
    f = write(tmp_path, good(blok={"box": [1, 1, 5, 5]}))
    with pytest.raises(GroundingError, match=rf"^{f}: entities.blok: unknown entity 'blok' \(the spec's entities: "
                                             r"block, gripper, goal\)$"):
        load_prompts(f).regions(NAMES, 48, 64)


def test_box_outside_the_image_names_file_and_field(tmp_path):
    f = write(tmp_path, good(block={"box": [50, 10, 70, 20]}))
    with pytest.raises(GroundingError, match=rf"^{f}: entities.block.box: the box \[50.0, 10.0, 70.0, 20.0\] lies "
                                             r"outside the 64×48 image"):
        load_prompts(f).regions(NAMES, 48, 64)
    f = write(tmp_path, good(block={"points": [[3, 3], [64, 10]]}))
    with pytest.raises(GroundingError, match=rf"^{f}: entities.block.points: a point of .* lies outside the 64×48"):
        load_prompts(f).regions(NAMES, 48, 64)


def test_missing_or_empty_mask_png_names_file_and_field(tmp_path):
    f = write(tmp_path, good(gripper={"mask": "nope.png"}))
    with pytest.raises(GroundingError, match=rf"^{f}: entities.gripper.mask: mask file {tmp_path / 'nope.png'} "
                                             "not found$"):
        load_prompts(f)
    cv2.imwrite(str(tmp_path / "empty.png"), np.zeros((48, 64), np.uint8))
    f = write(tmp_path, good(gripper={"mask": "empty.png"}))
    with pytest.raises(GroundingError, match=r"entities.gripper.mask: .*empty.png is empty"):
        load_prompts(f)
    (tmp_path / "bad.png").write_text("not a png")
    f = write(tmp_path, good(gripper={"mask": "bad.png"}))
    with pytest.raises(GroundingError, match=r"entities.gripper.mask: .*bad.png is not a readable image"):
        load_prompts(f)
    mask = np.full((10, 10), 255, np.uint8)
    cv2.imwrite(str(tmp_path / "small.png"), mask)
    f = write(tmp_path, good(gripper={"mask": "small.png"}))
    with pytest.raises(GroundingError, match=rf"^{f}: entities.gripper.mask: the mask is 10×10 but the image is "
                                             "64×48$"):
        load_prompts(f).regions(NAMES, 48, 64)


def test_bad_version_and_other_fields(tmp_path):
    cases = [
        ({"frame": 0, "entities": {}}, r"version: missing \(this ltlreward reads prompts version 1\)"),
        ({**good(), "version": 2}, r"version: unsupported prompts version 2 \(expected 1\)"),
        ({**good(), "version": True}, r"version: unsupported prompts version True"),
        ({**good(), "frame": -1}, r"frame: expected a frame index \(an integer >= 0\), got -1"),
        ({**good(), "colour": 1}, r"colour: unknown field \(allowed: camera, entities, frame, height, meta, "),
        ({"version": 1}, r"entities: missing required field"),
        ({"version": 1, "entities": {}}, r"entities: expected at least one entity"),
        (good(block={"box": [1, 2, 3]}), r"entities.block.box\[0\]: expected 4 numbers, got 3 numbers"),
        (good(block={"box": [5, 2, 3, 9]}), r"entities.block.box: expected x0 < x1 and y0 < y1"),
        (good(block={"box": [1, 2, 3, 4], "mask": "m.png"}), r"entities.block: needs exactly one of 'box', 'mask', "
                                                             r"'points' \(got box, mask\)"),
        (good(block={"static": True}), r"entities.block: needs exactly one of 'box', 'mask', 'points'$"),
        (good(block={"box": [1, 2, 3, 4], "static": "yes"}), r"entities.block.static: expected true or false"),
        (good(block={"box": [1, 2, 3, 4], "color": "red"}), r"entities.block.color: unknown field"),
        (good(block={"points": []}), r"entities.block.points: expected a list of \[x, y\] points"),
        ({**good(), "width": 64}, r"height: missing: 'width' and 'height' come together"),
    ]
    for obj, msg in cases:
        f = write(tmp_path, obj)
        with pytest.raises(GroundingError, match=rf"^{f}: {msg}"):
            load_prompts(f)


def test_unreadable_files_and_json_errors(tmp_path):
    with pytest.raises(GroundingError, match=r"nothere.json: prompts file not found"):
        load_prompts(tmp_path / "nothere.json")
    f = tmp_path / "broken.prompts.json"
    f.write_text('{"version": 1,\n  "entities": }')
    with pytest.raises(GroundingError, match=rf"^{f}:2:15: not valid JSON"):
        load_prompts(f)


def test_finding_prompts_beside_a_video_or_in_a_directory(tmp_path):
    video = tmp_path / "clip.mp4"
    assert prompts_path_for(video) == tmp_path / "clip.prompts.json"
    assert find_prompts(video) is None
    write(tmp_path, good())
    assert find_prompts(video) == tmp_path / "clip.prompts.json"
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert find_prompts(video, other) == other / "clip.prompts.json"  # a directory: <stem>.prompts.json in it
    assert find_prompts(video, tmp_path / "one.json") == tmp_path / "one.json"  # one file for every video
    p = parse_prompts(good())
    assert find_prompts(video, p) is p and p.path == "<prompts>"


def test_support_plane_and_known_extents_use_the_sidecar_keys(tmp_path):
    obj = {**good(block={"box": [10, 20, 30, 40], "size": [0.05, 0.05, 0.1], "shape": "cylinder",
                         "anchor": [0, 0, -0.05]}), "support": {"z": 0.8}}
    p = load_prompts(write(tmp_path, obj))
    assert p.support_z == 0.8
    assert p.extents["block"].size == (0.05, 0.05, 0.1) and p.extents["block"].shape == "cylinder"
    assert p.extents["block"].anchor == (0.0, 0.0, -0.05)
    for entity, field, msg in (({"box": [1, 1, 5, 5], "shape": "box"}, "shape", "'size', which is missing"),
                               ({"box": [1, 1, 5, 5], "size": [0.1, 0, 0.1]}, "size", "three positive extents"),
                               ({"box": [1, 1, 5, 5], "size": [0.1, 0.1, 0.1], "shape": "cone"}, "shape",
                                "one of box, sphere, cylinder")):
        f = write(tmp_path, good(block=entity))
        with pytest.raises(GroundingError, match=rf"{f}: entities.block.{field}: .*{msg}"):
            load_prompts(f)
    f = write(tmp_path, {**good(), "support": {}})
    with pytest.raises(GroundingError, match=rf"{f}: support.z: missing"):
        load_prompts(f)
