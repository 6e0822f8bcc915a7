"""Photos as photos: each image analysed on its own, named by its file, with a row per face and an
annotated copy each; every format users bring."""

import csv
import json

import cv2
import numpy as np
from PIL import Image

from .conftest import tiltwatch


def photo_folder(root, astronaut):
    root.mkdir()
    (root / "sub").mkdir()
    rgb = cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB)
    for name in ("a.jpg", "b.png", "c.bmp", "d.tif", "e.webp"):
        cv2.imwrite(str(root / name), astronaut)
    frames = [Image.fromarray(rgb), Image.fromarray(np.zeros_like(rgb))]  # the face is the first frame
    frames[0].save(root / "f.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(rgb).save(root / "g.png", format="GIF")  # a GIF under a .png name
    cv2.imwrite(str(root / "sub" / "h.jpg"), astronaut)
    return root


def test_a_folder_of_photos_is_analysed_photo_by_photo(tmp_path, astronaut):
    folder, out = photo_folder(tmp_path / "photos", astronaut), tmp_path / "o"
    res = tiltwatch("analyze", folder, "--out", out, "-q")
    assert res.returncode == 0, res.stderr
    assert "1 sub-folder(s)" in res.stderr and "--recursive" in res.stderr  # not skipped without a word
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["source"] for r in lines] == ["a.jpg", "b.png", "c.bmp", "d.tif", "e.webp", "f.gif", "g.png"]
    assert all(len(r["faces"]) == 1 and r["faces"][0]["track_id"] is None for r in lines)  # nothing followed
    with open(out / "faces.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == [r["source"] for r in lines]
    assert all(r["label"] and float(r["p_happiness"]) > 0 and r["yaw"] for r in rows)
    # JPEG and PNG under their own names, the rest with ".png" added: b.png and b.webp would not collide
    assert sorted(p.name for p in (out / "annotated").iterdir()) == [
        "a.jpg",
        "b.png",
        "c.bmp.png",
        "d.tif.png",
        "e.webp.png",
        "f.gif.png",
        "g.png",
    ]
    assert "note: 1 animated image(s) or multi-page TIFF(s) (e.g. f.gif): only the first frame" in res.stderr
    assert not (out / "summary.csv").exists() and not (out / "annotated.mp4").exists()

    res = tiltwatch("analyze", folder, "--out", out, "-q", "--recursive", "--overwrite")
    assert res.returncode == 0, res.stderr
    sources = [json.loads(line)["source"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert "sub/h.jpg" in sources and (out / "annotated" / "sub" / "h.jpg").is_file()


def test_the_same_photo_twice_reads_the_same(tmp_path, astronaut):
    folder = tmp_path / "twice"
    folder.mkdir()
    cv2.imwrite(str(folder / "1.png"), astronaut)
    cv2.imwrite(str(folder / "2.png"), astronaut)
    res = tiltwatch("analyze", folder, "--out", tmp_path / "o", "-q", "--output", "jsonl")
    assert res.returncode == 0, res.stderr
    a, b = [json.loads(line)["faces"][0] for line in (tmp_path / "o" / "results.jsonl").read_text().splitlines()]
    assert a["emotion"] == b["emotion"] and a["pose"] == b["pose"]  # no smoothing carried from the first


def test_a_run_kept_inside_the_folder_is_not_read_back(tmp_path, astronaut):
    """``--out`` inside the photo folder with ``--recursive``: the next run does not analyse the
    last run's annotated copies (nor a killed run's hidden staging folder) as more photos."""
    folder = tmp_path / "album"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), astronaut)
    for _ in range(2):
        res = tiltwatch("analyze", folder, "--out", folder / "results", "-q", "--recursive", "--overwrite")
        assert res.returncode == 0, res.stderr
        assert len((folder / "results" / "results.jsonl").read_text().splitlines()) == 1
    (folder / "results" / ".partial-1" / "annotated").mkdir(parents=True)
    cv2.imwrite(str(folder / "results" / ".partial-1" / "annotated" / "a.jpg"), astronaut)
    res = tiltwatch("analyze", folder, "--out", tmp_path / "elsewhere", "-q", "--recursive")
    assert res.returncode == 0 and "1 folder(s) holding a tiltwatch run's outputs left out (e.g. results)" in res.stderr
    assert len((tmp_path / "elsewhere" / "results.jsonl").read_text().splitlines()) == 1
