"""Photos: every common format loads as RGB, bad files are reported, faces are cropped."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from idia import faces
from idia.faces import UnreadableImage, load_image, prepare_photo, prepare_photos


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def test_formats_and_modes(tmp_path, astronaut):
    small = astronaut.resize((64, 64))
    small.save(tmp_path / "a.webp")
    small.save(tmp_path / "a.tiff")
    small.convert("CMYK").save(tmp_path / "cmyk.jpg")
    rgba = small.convert("RGBA")
    rgba.putalpha(0)
    rgba.save(tmp_path / "transparent.png")
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(
        tmp_path / "sixteen.png")
    frames = [Image.new("RGB", (20, 20), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    small.save(tmp_path / "camera.jpg", format="MPO", save_all=True, append_images=[small])
    small.save(tmp_path / "a.bmp")
    for name in ("a.webp", "a.tiff", "cmyk.jpg", "transparent.png", "sixteen.png", "anim.gif",
                 "camera.jpg", "a.bmp"):
        image = load_image(tmp_path / name)
        assert image.mode == "RGB", name
    assert load_image(tmp_path / "transparent.png").getpixel((0, 0)) == (255, 255, 255)
    red = load_image(tmp_path / "anim.gif").getpixel((5, 5))
    assert red[0] > 200 and red[2] < 50, "first frame of an animation"


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (60, 30), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").size == (30, 60)


def test_bad_files_are_reported_not_used(tmp_path, monkeypatch):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    Image.new("RGB", (50, 50)).save(tmp_path / "good.png")
    truncated = (tmp_path / "good.png").read_bytes()[:60]
    (tmp_path / "truncated.png").write_bytes(truncated)
    results = prepare_photos(
        [tmp_path / n for n in ("empty.jpg", "text.jpg", "truncated.png", "missing.png")],
        crop="none",
    )
    assert [p.status for p in results] == ["unreadable"] * 4
    assert "0 bytes" in results[0].reason and "not an image" in results[1].reason
    monkeypatch.setattr(faces, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UnreadableImage, match="too large"):
        load_image(tmp_path / "good.png")


def test_face_is_found_and_cropped_on_the_astronaut(tmp_path, astronaut):
    astronaut.save(tmp_path / "astronaut.png")
    for detector in ("yunet", "haar"):
        photo = prepare_photo(tmp_path / "astronaut.png", "face", faces.get_detector(detector))
        assert photo.status == "ok", detector
        box = photo.box
        # Eileen Collins' face is around x 180-270, y 60-175 in the 512x512 photo
        assert 150 < box.x + box.w / 2 < 290 and 60 < box.y + box.h / 2 < 180, detector
        assert photo.image.size == (box.w, box.w) and box.w < 300


def test_photo_without_a_face_is_skipped(tmp_path):
    Image.new("RGB", (200, 200), (120, 160, 90)).save(tmp_path / "lawn.png")
    photo = prepare_photo(tmp_path / "lawn.png", "face")
    assert photo.status == "no_face" and photo.image is None
    assert prepare_photo(tmp_path / "lawn.png", "none").status == "ok"


def test_group_photos_take_the_largest_face(shared_data):
    group = shared_data / "faces" / "group_photos"
    photo = prepare_photo(group / "obama_and_biden.jpg", "face")
    assert photo.status == "ok" and photo.n_faces >= 2
    boxes = faces.detect_faces(load_image(group / "obama_and_biden.jpg"),
                               faces.get_detector())
    assert boxes[0].area == max(b.area for b in boxes)
    assert photo.box.x <= boxes[0].x and photo.box.x + photo.box.w >= boxes[0].x + boxes[0].w


def test_every_reference_identity_photo_has_a_face(shared_data):
    photos = sorted((shared_data / "faces" / "identities").glob("*/*"))
    results = prepare_photos(photos, "face")
    assert len(results) == 15
    assert all(p.status == "ok" for p in results), [p.path for p in results if p.status != "ok"]
    edge = prepare_photos(sorted((shared_data / "faces" / "edge_cases").iterdir()), "face")
    assert all(p.status == "ok" for p in edge)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\nshowpage\n%%EOF\n"


def test_a_disguised_format_never_reaches_its_decoder(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    calls = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: calls.append(a))
    (tmp_path / "face.png").write_bytes(EPS)
    photo = prepare_photo(tmp_path / "face.png", "none")
    assert photo.status == "unreadable" and "supported format" in photo.reason
    assert calls == [], "Ghostscript was invoked on a user file"


def test_loading_leaves_pillow_and_warning_settings_alone(tmp_path, monkeypatch):
    Image.new("RGB", (50, 40)).save(tmp_path / "good.png")
    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    seen = []
    transpose = faces.ImageOps.exif_transpose

    def spy(image):  # runs mid-decode: the global limit must not be touched, even briefly
        seen.append(Image.MAX_IMAGE_PIXELS)
        return transpose(image)

    monkeypatch.setattr(faces.ImageOps, "exif_transpose", spy)
    assert load_image(tmp_path / "good.png").size == (50, 40)
    monkeypatch.setattr(faces, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UnreadableImage, match="too large \\(50x40"):
        load_image(tmp_path / "good.png")
    assert seen == [limit]
    assert limit == Image.MAX_IMAGE_PIXELS and filters == warnings.filters


def test_importing_idia_changes_no_global_setting():
    """Third-party modules idia pulls in are imported first: what changes after is idia's."""
    import json
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, json; before = list(sys.modules); import idia.cli;"
         "print(json.dumps([m for m in sys.modules if m not in before]))"],
        capture_output=True, text=True, check=True).stdout
    others = [m for m in json.loads(loaded) if m.split(".")[0] != "idia"]
    script = (
        "import importlib, json, sys, warnings\n"
        f"for name in {others!r}:\n"
        "    try:\n        importlib.import_module(name)\n    except Exception:\n        pass\n"
        "from PIL import Image\n"
        "before = (Image.MAX_IMAGE_PIXELS, repr(warnings.filters))\n"
        "import idia, idia.cli, idia.faces, idia.audit, idia.cache\n"
        "print(json.dumps(before == (Image.MAX_IMAGE_PIXELS, repr(warnings.filters))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "true"
