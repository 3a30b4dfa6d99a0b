"""The web page: its messages and verdicts (no browser), finding the lab's model, and a real
headless Chromium that uploads photos, runs the attack and reads the verdict from the page."""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from idia.serve.web import (
    NO_MODEL_HELP,
    PromptMemory,
    WebDemo,
    create_web_app,
    find_local_models,
    launch_web,
)
from idia.zeroshot import EmbeddingZeroShot

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def spec(tiny_open_clip) -> str:
    config, checkpoint = tiny_open_clip
    return f"open_clip:{config}:{checkpoint}"


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Path]:
    """A real face (the astronaut from scikit-image), a second one, and a photo with none."""
    from skimage import data

    root = tmp_path_factory.mktemp("pictures")
    face = Image.fromarray(data.astronaut())
    paths = {
        "face": root / "astronaut.png",
        "face2": root / "astronaut-mirrored.jpg",
        "noface": root / "grey-wall.png",
    }
    face.save(paths["face"])
    face.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(paths["face2"])
    Image.new("RGB", (240, 200), (128, 128, 128)).save(paths["noface"])
    return paths


@pytest.fixture(scope="module")
def demo(spec) -> WebDemo:
    return WebDemo([spec], num_names=20, device="cpu")


def test_lab_models_are_found_newest_first(tmp_path):
    config = json.dumps({"embed_dim": 8, "vision_cfg": {}, "text_cfg": {}})
    older = tmp_path / "lab" / "logs" / "run1"
    (older / "checkpoints").mkdir(parents=True)
    (older / "tiny.json").write_text(config)
    (older / "checkpoints" / "epoch_1.pt").write_bytes(b"x")
    (older / "checkpoints" / "epoch_2.pt").write_bytes(b"x")
    newer = tmp_path / "lab" / "model"
    newer.mkdir(parents=True)
    (newer / "tiny.json").write_text(config)
    (newer / "weights.safetensors").write_bytes(b"x")
    (newer / "settings.json").write_text(json.dumps({"epochs": 3}))  # not a model config
    lonely = tmp_path / "lab" / "no-weights"
    lonely.mkdir()
    (lonely / "tiny.json").write_text(config)
    now = time.time()
    os.utime(older / "checkpoints" / "epoch_1.pt", (now - 300, now - 300))
    os.utime(older / "checkpoints" / "epoch_2.pt", (now - 200, now - 200))
    os.utime(newer / "weights.safetensors", (now - 100, now - 100))
    found = find_local_models([tmp_path / "lab", tmp_path / "elsewhere"])
    assert found == [
        f"open_clip:{(newer / 'tiny.json').resolve()}:{(newer / 'weights.safetensors').resolve()}",
        f"open_clip:{(older / 'tiny.json').resolve()}:"
        f"{(older / 'checkpoints' / 'epoch_2.pt').resolve()}",
    ]
    assert find_local_models([tmp_path / "lab"], max_depth=1) == found[:1], "depth is bounded"


def test_clear_messages(demo, spec, pictures):
    def verdict(*args):
        return demo.run(*args).verdict

    assert NO_MODEL_HELP in verdict("", "Ada Lovelace", [str(pictures["face"])])
    assert "Type the person's full name" in verdict(spec, "  ", [str(pictures["face"])])
    assert "Too few photos" in verdict(spec, "Ada Lovelace", [])
    no_face = verdict(spec, "Ada Lovelace", [str(pictures["noface"])])
    assert "No face found" in no_face and "grey-wall.png: no face found" in no_face
    assert "unknown open_clip" in verdict("open_clip:Nope-1:x", "A B", [str(pictures["face"])])


def test_a_run_shows_verdict_crops_templates_and_explanation(demo, spec, pictures):
    answer = demo.run(spec, "Ada Lovelace", [str(p) for p in pictures.values()], 20, 0, "face")
    assert answer.verdict.startswith(("## YES", "## NO")) and "Score:" in answer.verdict
    assert "p-value" in answer.verdict and "Skipped grey-wall.png: no face found" in answer.verdict
    assert "Only 2 usable photo(s)" in answer.verdict
    assert [label for _, label in answer.crops] == ["astronaut.png", "astronaut-mirrored.jpg"]
    assert all(image.width == image.height < 512 for image, _ in answer.crops), "face crops"
    assert len(answer.table) == 21 and answer.table.iloc[0, 3] in ("yes", "no")
    assert "What it does not mean" in answer.explanation
    whole = demo.run(spec, "Ada Lovelace", [str(pictures["noface"])], 20, 0, "none")
    assert "Score:" in whole.verdict and whole.crops[0][0].size == (240, 200)


def test_prompt_embeddings_are_shared_but_faces_are_not_kept(knowing_model):
    memory = PromptMemory(max_texts=10_000)
    photos = [knowing_model.photo("Jane Doe")]
    groups = [[f"{p} {i}" for p in knowing_model.people] for i in range(3)]
    EmbeddingZeroShot(knowing_model, memory).zero_shot(photos, groups)
    EmbeddingZeroShot(knowing_model, memory).zero_shot(photos, groups)  # the next visitor
    assert knowing_model.text_calls == 18 and knowing_model.image_calls == 2
    assert len(memory) == 18 and memory.get(knowing_model.identity, "image", ["x"]) == {}
    small = PromptMemory(max_texts=4)
    small.put("m", "text", list("abcdef"), np.eye(6, dtype=np.float32))
    small.put("m", "image", ["face"], np.ones((1, 6), dtype=np.float32))
    assert len(small) == 4 and set(small.get("m", "text", list("abcdef"))) == set("cdef")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def drop_files(page, paths: list[Path]) -> None:
    """Drag several files onto the upload area at once, as a person would."""
    files = [
        [p.name, mimetypes.guess_type(p.name)[0], base64.b64encode(p.read_bytes()).decode()]
        for p in paths
    ]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, type, data] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type }));
            }
            return transfer;
        }""",
        files,
    )
    target = page.locator("#photos button.upload-container, #photos button").first
    for event in ("dragenter", "dragover", "drop"):
        target.dispatch_event(event, {"dataTransfer": transfer})


@pytest.mark.timeout(300)
def test_in_a_real_browser(demo, spec, pictures, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    page_app = create_web_app(demo, default_model=spec)
    _, url, _ = launch_web(page_app, host="127.0.0.1", port=free_port(), block=False)
    try:
        assert url.startswith("http://127.0.0.1:")
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
            )
            try:
                page = browser.new_page()
                page.set_default_timeout(60_000)
                page.goto(url)
                verdict = page.locator("#verdict")
                page.locator("#run").click()
                sync_api.expect(verdict).to_contain_text("Type the person's full name")
                page.get_by_label("Full name").fill("Ada Lovelace")
                drop_files(page, [pictures["face"], pictures["face2"], pictures["noface"]])
                sync_api.expect(page.locator("#photos")).to_contain_text("grey-wall")
                page.locator("#run").click()
                sync_api.expect(verdict).to_contain_text("Score:")
                text = verdict.inner_text()
                assert ("YES" in text or "NO" in text) and "Ada Lovelace" in text
                assert "Skipped grey-wall.png: no face found" in text
                sync_api.expect(page.locator("#crops img")).to_have_count(2)
                sync_api.expect(page.locator("#templates")).to_contain_text("a photo of")
                sync_api.expect(page.locator("#explanation")).to_contain_text(
                    "What it does not mean"
                )
            finally:
                browser.close()
    finally:
        page_app.close()
