"""The web page: its messages and verdicts (no browser), finding the lab's model, what a
hostile visitor can and cannot do (pick a model the operator did not list, see a path, keep
photos on the server), the login, and a real headless Chromium that uploads photos, runs the
attack and reads the verdict from the page."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import mimetypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from idia.cli import app
from idia.models.card import read_card
from idia.serve import demo as web_demo
from idia.serve import page as web_page
from idia.serve.catalog import find_local_models, model_label, offered_models, split_entry
from idia.serve.demo import MAX_NAME_CHARS, WebDemo
from idia.serve.examples import lab_examples
from idia.serve.logins import login_check, read_logins
from idia.serve.markdown import (
    MAX_MESSAGE_CHARS,
    NO_MODEL_HELP,
    NOT_OFFERED,
    examples_markdown,
    visitor_text,
)
from idia.serve.page import create_web_app, launch_web
from idia.serve.uploads import delete_uploads, remove_stale_upload_dirs
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


@pytest.fixture(scope="module")
def label(demo) -> str:
    """The name the page shows for the model."""
    (only,) = demo.models
    return only


@pytest.fixture(scope="module")
def lab_demo(familiarity_lab, familiarity_model) -> WebDemo:
    """The page for the synthetic lab, prepared as `idia web` does at start-up."""
    card = read_card(familiarity_lab / "model" / "model.card.json")
    demo = WebDemo({card.name: familiarity_model}, num_names=300, cards={card.name: card})
    demo.prepare(card.name, log=lambda _: None)
    return demo


@pytest.fixture(scope="module")
def browser_demo(request) -> WebDemo:
    """The synthetic lab's page; with IDIA_WEB_LAB=DIR, the page of a real lab's model
    (`make lab`), as `idia web --lab-dir DIR` serves it (to check it, and to make the
    README's screenshot)."""
    real = os.environ.get("IDIA_WEB_LAB")
    if not real:
        return request.getfixturevalue("lab_demo")
    demo = WebDemo(offered_models(find_local_models([Path(real)])), device="cpu")
    demo.prepare(next(iter(demo.models)), log=lambda _: None)
    return demo


def test_a_lab_whose_card_does_not_say_synthetic_shows_no_examples(familiarity_lab):
    """Real people's photos (idia lab --faces, or a card that does not say) are never
    offered as examples; the lab's people remain the face test's reference."""
    card = read_card(familiarity_lab / "model" / "model.card.json")
    real = replace(card, trained_on={**card.trained_on, "synthetic": False})
    lab, why = lab_examples(real)
    assert why is None and lab is not None
    assert lab.real_people and lab.examples == ()
    assert lab.people_dir == familiarity_lab / "people"
    assert "not shown" in examples_markdown("m", lab)


def test_lab_examples_are_chosen_by_the_labs_audit(lab_demo, familiarity_lab):
    (label,) = lab_demo.labs
    lab = lab_demo.labs[label]
    first, second, middle, low, third = lab.examples
    assert (first.count, first.finding, first.verdict) == (75, "face_association",
                                                            "face_association")
    assert (second.count, second.finding, second.verdict) == (0, None, None)
    assert (middle.count, middle.finding) == (25, "face_association")
    assert low.count == 1 and (third.count, third.finding) == (0, None)
    assert first.label == f"{first.name} (in training: 75 pairs): face linked to name"
    assert second.label == f"{second.name} (in training: never): nothing found"
    assert low.label.startswith(f"{low.name} (in training: 1 pair): ")
    assert max(len(e.label) for e in lab.examples) <= 60, "Gradio cuts longer labels"
    assert all(len(e.photos) == 4 for e in lab.examples)
    assert all(familiarity_lab / "people" in e.photos[0].parents for e in lab.examples)
    assert "for 25 of 25 at 75 pairs" in lab.overview and "of 75 non-members" in lab.overview
    assert "Benjamini-Hochberg): 25, 25, 0, " in lab.overview


def test_an_example_member_gives_yes_and_a_non_member_no(lab_demo):
    (label,) = lab_demo.labs
    member, outsider, *_ = lab_demo.labs[label].examples
    yes = lab_demo.run_example(label, member.name)
    assert yes.verdict.startswith(f"## YES: the model links this face to the name {member.name}")
    assert "Lab example: " in yes.verdict and "in 75 of the model's training pairs" in yes.verdict
    assert "The lab's audit, for this person alone: links face and name (face test p = " in (
        yes.verdict
    )
    assert "across all 150 people at once" in yes.verdict
    assert "other people of this model's lab" in yes.verdict
    assert len(yes.crops) == 4 and yes.crops[0][0].size == (24, 24), "whole photos, as carded"
    no = lab_demo.run_example(label, outsider.name)
    assert no.verdict.startswith(f"## NO: no evidence that the model knows {outsider.name}")
    assert "kept out of the model's training data" in no.verdict


def test_only_the_pages_examples_can_be_asked_for(lab_demo, demo, label, familiarity_lab):
    (lab_label,) = lab_demo.labs
    member = lab_demo.labs[lab_label].examples[0]
    others = [p.name.replace("_", " ") for p in (familiarity_lab / "people").iterdir()]
    not_example = next(n for n in others if lab_demo.labs[lab_label].find(n) is None)
    for model, name in ((lab_label, not_example), (lab_label, "../../etc/passwd"),
                        (label, member.name), ("", member.name), (lab_label, None)):
        answer = lab_demo.run_example(model, name)
        assert "Choose one of the examples" in answer.verdict, (model, name)
    assert demo.labs == {} and demo.run_example(label, member.name).table.empty


def test_the_default_crop_follows_the_card(lab_demo, familiarity_lab, spec, pictures, tmp_path):
    (label,) = lab_demo.labs
    photos = sorted(str(p) for p in (familiarity_lab / "people").glob("*/0.png"))[:3]
    assert lab_demo.default_crop(label) == "none"
    whole = lab_demo.run(label, "Ada Lovelace", photos, None, 0, None)
    assert "Paper's rule:" in whole.verdict and len(whole.crops) == 3
    faces = lab_demo.run(label, "Ada Lovelace", photos, None, 0, "face")
    assert "No face found" in faces.verdict
    # a carded open_clip model: the card's crop is the default, a visitor's other choice noted
    config, checkpoint = Path(spec.split(":")[1]), Path(spec.split(":")[2])
    shutil.copy(config, tmp_path / config.name)
    shutil.copy(checkpoint, tmp_path / "checkpoint.pt")
    (tmp_path / "checkpoint.card.json").write_text(json.dumps(
        {"idia_model_card": 1, "name": "Carded", "photos": {"crop": "none"}}))
    carded = WebDemo([f"open_clip:{tmp_path / config.name}:{tmp_path / 'checkpoint.pt'}"],
                     num_names=20, device="cpu")
    assert list(carded.models) == ["Carded"] and carded.default_crop("Carded") == "none"
    assert WebDemo([spec]).default_crop("tiny-test-clip (epoch_1)") == "face"
    face = carded.run("Carded", "Ada Lovelace", [str(pictures["face"])], 20, 0, "face")
    assert "Carded expects whole photos (its model card); you chose face crops" in face.verdict
    page = create_web_app(carded)
    try:
        (radio,) = [c for c in page.config["components"]
                    if c.get("props", {}).get("elem_id") == "crop"]
        assert radio["props"]["value"] == "none"
    finally:
        page.close()


def test_prompts_and_lab_people_are_encoded_at_start_up_not_on_the_first_click(
    familiarity_lab, familiarity_model
):
    from idia.name_null import forget_shared_familiarity

    forget_shared_familiarity()  # earlier tests' attacks on this model filled it
    counted = CountingModel(familiarity_model)
    card = read_card(familiarity_lab / "model" / "model.card.json")
    demo = WebDemo({"Lab": counted}, num_names=300, cards={"Lab": card})
    lines = []
    demo.prepare("Lab", log=lines.append)
    assert any("encoding 6,300 prompts (21 templates x 300 candidate names)" in line
               for line in lines)
    assert any("600 photos of 150 lab people encoded" in line for line in lines)
    first = demo.labs["Lab"].examples[0]
    null = demo._attacker("Lab", 300, 0, "none").name_null(first.name)
    assert any(f"and its {null.n_decoys:,} full-name decoys encoded" in line for line in lines)
    decoy_prompts = 21 * (1 + null.n_decoys)  # a set of its own, with the real name
    assert counted.texts > 6300 + decoy_prompts - 21  # and the name parts of the pools
    assert counted.images == 600
    counted.texts = counted.images = 0
    answer = demo.run_example("Lab", first.name)
    assert answer.verdict.startswith("## YES")
    assert counted.texts == 0, "no prompt encoded on the first click"
    assert counted.images == 4, "only the example's own photos"
    assert demo.classifier("Lab").texts_in_memory == 6300 + decoy_prompts, "prompts, no photo"


class CountingModel:
    """An EmbeddingModel that counts what it encodes."""

    def __init__(self, model) -> None:
        self.model, self.texts, self.images = model, 0, 0
        self.name, self.identity, self.logit_scale = model.name, model.identity, model.logit_scale

    def encode_texts(self, texts):
        self.texts += len(texts)
        return self.model.encode_texts(texts)

    def encode_images(self, images):
        self.images += len(images)
        return self.model.encode_images(images)


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


def test_clear_messages(demo, label, pictures):
    def verdict(*args):
        return demo.run(*args).verdict

    assert NO_MODEL_HELP in WebDemo().run(None, "Ada Lovelace", [str(pictures["face"])]).verdict
    assert NOT_OFFERED in verdict("", "Ada Lovelace", [str(pictures["face"])])
    assert "Type the person's full name" in verdict(label, "  ", [str(pictures["face"])])
    assert "Too few photos" in verdict(label, "Ada Lovelace", [])
    assert "Too many photos: 21" in verdict(label, "A B", [f"/nowhere/{i}.png" for i in range(21)])
    no_face = verdict(label, "Ada Lovelace", [str(pictures["noface"])])
    assert "No face found" in no_face and "grey-wall.png: no face found" in no_face


def test_a_run_shows_verdict_crops_templates_and_explanation(demo, label, pictures):
    answer = demo.run(label, "Ada Lovelace", [str(p) for p in pictures.values()], 20, 0, "face")
    assert answer.verdict.startswith("## ") and "Paper's rule:" in answer.verdict
    # every claim is listed: tested with its p-value, or why not
    assert "has seen this name" in answer.verdict and "p = " in answer.verdict
    assert "links your face to your name" in answer.verdict and "not tested" in answer.verdict
    assert "Skipped grey-wall.png: no face found" in answer.verdict
    assert "Only 2 usable photo(s)" in answer.verdict
    assert [label for _, label in answer.crops] == ["astronaut.png", "astronaut-mirrored.jpg"]
    assert all(image.width == image.height < 512 for image, _ in answer.crops), "face crops"
    assert len(answer.table) == 21 and answer.table.iloc[0, 3] in ("yes", "no")
    assert "What it does not mean" in answer.explanation
    whole = demo.run(label, "Ada Lovelace", [str(pictures["noface"])], 20, 0, "none")
    assert "Paper's rule:" in whole.verdict and whole.crops[0][0].size == (240, 200)
    verdict, crops, *_, photos = answer.outputs()
    assert crops.count("<img src=\"data:image/png;base64,") == 2, "crops inline, no file"
    assert photos is None, "the page's upload is emptied: the files are gone"


def test_visitors_can_only_pick_the_operators_models(demo, label, pictures, monkeypatch):
    """A typed spec is never loaded: no local path (a file-existence oracle), no URL (a
    server-side request carrying the operator's key), no hub config (remote code)."""
    loads = []
    monkeypatch.setattr(web_demo, "load_model", lambda *a, **k: loads.append(a))
    face = [str(pictures["face"])]
    for typed in (
        "open_clip:ViT-B-32:/etc/passwd",
        "open_clip:/root/model.json:/root/model.pt",
        "http://127.0.0.1:9",
        "https://visitor.example/steal",
        "open_clip:hf-hub:visitor/evil",
        demo.models[label],  # even the real spec: visitors choose names, not specs
    ):
        assert NOT_OFFERED in demo.run(typed, "Ada Lovelace", face).verdict, typed
    assert loads == []


def test_names_are_shown_never_paths(spec, tiny_open_clip, tmp_path):
    config, checkpoint = tiny_open_clip
    assert model_label(spec) == "tiny-test-clip (epoch_1)"
    assert model_label("open_clip:ViT-B-32:laion400m_e32") == "ViT-B-32 (laion400m_e32)"
    assert model_label("http://user:pw@10.0.0.5:8000/v1?k=x") == "API at 10.0.0.5:8000"
    assert model_label(f"hf:{tmp_path}") == f"hf {tmp_path.name}"
    assert model_label(f"hf:{tmp_path}/gone-at-start-up") == "hf gone-at-start-up"
    assert model_label("hf:openai/clip-vit-base-patch32") == "hf openai/clip-vit-base-patch32"
    assert split_entry(f"Lab model={spec}") == ("Lab model", spec)
    assert split_entry("http://h:1/?a=b") == (None, "http://h:1/?a=b")
    offered = offered_models([spec, f"Lab={spec}", f"open_clip:{config}:{tmp_path / 'epoch_1.pt'}"])
    assert list(offered) == ["tiny-test-clip (epoch_1)", "tiny-test-clip (epoch_1) #2"]
    page = create_web_app(WebDemo(offered, device="cpu"))
    try:
        shown = json.dumps(page.config)
        assert "tiny-test-clip (epoch_1) #2" in shown
        assert str(config.parent) not in shown and str(tmp_path) not in shown
    finally:
        page.close()


def test_a_name_longer_than_the_limit_is_refused_before_any_work(demo, label, pictures):
    answer = demo.run(label, "A" * (MAX_NAME_CHARS + 1), [str(pictures["face"])])
    assert f"at most {MAX_NAME_CHARS} characters" in answer.verdict
    assert "A" * 50 not in answer.verdict  # not echoed back


def test_errors_shown_to_visitors_are_bounded_and_path_free(pictures, tmp_path, caplog):
    missing = tmp_path / "secret" / "weights.pt"
    demo = WebDemo({"Broken": f"open_clip:ViT-B-32:{missing}"}, device="cpu")
    verdict = demo.run("Broken", "A B", [str(pictures["face"])]).verdict
    assert "Broken is not available" in verdict and str(tmp_path) not in verdict
    assert str(missing) in caplog.text, "the operator's log has the details"
    message = visitor_text(
        f"cannot read {tmp_path}/upload/me.png nor C:\\x\\y.jpg: " + "x" * 1000,
        {f"{tmp_path}/upload/me.png": "me.png"},
    )
    assert message.startswith("cannot read me.png nor [path]: xxx")
    assert len(message) <= MAX_MESSAGE_CHARS and str(tmp_path) not in message


def test_uploads_are_deleted_when_each_check_ends(demo, label, pictures, tmp_path):
    uploads = tmp_path / "uploads"
    mine = tmp_path / "mine.png"
    shutil.copy(pictures["face"], mine)
    abandoned = uploads / "digest-of-a-photo-never-checked"  # emptied by Gradio's cleanup
    abandoned.mkdir(parents=True)
    os.utime(abandoned, (time.time() - 120, time.time() - 120))
    previous, demo.upload_dir = demo.upload_dir, uploads
    try:
        for name, photo_names in (
            ("Ada Lovelace", ["face", "noface"]),  # a check that runs
            ("", ["face"]),  # a check that stops at once
            ("Ada Lovelace", ["noface"]),  # one that finds no face
        ):
            sent = []
            for i, key in enumerate(photo_names):
                folder = uploads / f"hash{i}"
                folder.mkdir(parents=True, exist_ok=True)
                sent.append(str(shutil.copy(pictures[key], folder)))
            demo.run(label, name, [*sent, str(mine)], 20)
            assert list(uploads.iterdir()) == [], "uploads and their folders are gone"
    finally:
        demo.upload_dir = previous
    assert mine.exists(), "files outside the upload folder are never deleted"
    delete_uploads([str(uploads)], uploads)
    assert uploads.is_dir(), "not the folder itself"


def test_stale_upload_folders_of_crashed_runs_are_removed(tmp_path):
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = tmp_path / f"idia-web-{finished.pid}-abc"
    alive = tmp_path / f"idia-web-{os.getppid()}-def"
    own = tmp_path / f"idia-web-{os.getpid()}-ghi"
    other = tmp_path / "gradio"
    for folder in (dead, alive, own, other):
        (folder / "x").mkdir(parents=True)
        (folder / "x" / "photo.png").write_bytes(b"x")
    assert remove_stale_upload_dirs(tmp_path) == [dead]
    assert not dead.exists() and alive.exists() and own.exists() and other.exists()


def test_the_page_uses_a_private_upload_folder(demo):
    page = create_web_app(demo)
    page.close()
    folder = demo.upload_dir
    assert folder.name.startswith(f"idia-web-{os.getpid()}-")
    assert os.environ["GRADIO_TEMP_DIR"] == str(folder)
    assert folder.stat().st_mode & 0o777 == 0o700


def test_the_page_says_where_photos_go(spec):
    local = WebDemo([spec]).privacy_markdown()
    assert "deleted when it ends" in local and "API" not in local
    mixed = WebDemo({"Lab": spec, "Provider X": "http://127.0.0.1:9"}).privacy_markdown()
    assert "**Provider X** is a model behind an API" in mixed
    assert "sent to that API" in mixed and "with the other models nothing leaves" in mixed


def test_face_embeddings_are_never_written_to_disk(demo, label, pictures, tmp_path, monkeypatch):
    monkeypatch.setenv("IDIA_CACHE_DIR", str(tmp_path / "idia-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    answer = demo.run(label, "Ada Lovelace", [str(pictures["face"])], 20, 0, "face")
    assert "Paper's rule:" in answer.verdict
    assert not (tmp_path / "idia-cache").exists() and not (tmp_path / "xdg").exists()


def test_logins(tmp_path):
    logins = read_logins(["# invited", "ann:pw:with:colons", "", "bob:x"])
    assert logins == {"ann": "pw:with:colons", "bob": "x"}
    with pytest.raises(ValueError, match="line 1"):
        read_logins(["no-password"])
    check = login_check(logins)
    assert check("ann", "pw:with:colons") and check("bob", "x")
    assert not check("ann", "x") and not check("eve", "x") and not check("bob", "")


def test_the_web_command_lists_models_and_requires_logins_off_loopback(
    spec, tmp_path, monkeypatch
):
    launched = {}

    def fake_launch(page, host, port, auth=None):
        launched.update(page=page, host=host, auth=auth)
        page.close()

    monkeypatch.setattr(web_page, "launch_web", fake_launch)
    runner = CliRunner()
    common = ["web", "--model", f"Tiny={spec}", "--device", "cpu", "--host", "0.0.0.0",
              "--num-names", "20"]  # each start encodes 21 x 20 prompts, not 21 x 1,000
    result = runner.invoke(app, common, env={"IDIA_WEB_AUTH": ""})
    assert result.exit_code == 0, result.output
    assert "without --auth-file" in result.stderr and launched["auth"] is None
    assert "models offered: Tiny" in result.stderr
    logins = tmp_path / "logins"
    logins.write_text("ann:s3cret\n")
    logins.chmod(0o600)
    result = runner.invoke(app, [*common, "--auth-file", str(logins)])
    assert result.exit_code == 0, result.output
    assert "logins cross the network in clear" in result.stderr
    assert launched["auth"]("ann", "s3cret") and not launched["auth"]("ann", "x")
    result = runner.invoke(app, common, env={"IDIA_WEB_AUTH": "bob:pw"})
    assert launched["auth"]("bob", "pw")


def test_the_web_command_offers_the_newest_lab_model(spec, tiny_open_clip, monkeypatch):
    launched = {}
    monkeypatch.setattr(web_page, "launch_web", lambda page, **kw: launched.update(page=page))
    config, _ = tiny_open_clip
    result = CliRunner().invoke(app, ["web", "--lab-dir", str(config.parent), "--device", "cpu",
                                      "--num-names", "20"])
    assert result.exit_code == 0, result.output
    assert "loading tiny-test-clip (epoch_1)" in result.stderr
    assert "models offered: tiny-test-clip (epoch_1)" in result.stderr
    launched["page"].close()


@pytest.mark.timeout(300)
def test_the_upload_folder_goes_at_exit_and_stale_ones_at_start(spec, tmp_path):
    """`idia web` as a subprocess: at start it removes the upload folder a killed run left,
    and on SIGTERM (how services are stopped) it removes its own."""
    finished = subprocess.Popen(["true"])
    finished.wait()
    stale = tmp_path / f"idia-web-{finished.pid}-crashed"
    (stale / "digest").mkdir(parents=True)
    (stale / "digest" / "face.png").write_bytes(b"x")
    port = free_port()
    command = [sys.executable, "-c", "from idia.cli import main; main()", "web"]
    server = subprocess.Popen(
        [*command, "--model", spec, "--device", "cpu", "--port", str(port), "--num-names", "20"],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            assert time.monotonic() < deadline, "idia web did not come up"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        assert not stale.exists()
        (own,) = tmp_path.glob(f"idia-web-{server.pid}-*")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert not own.exists()


@pytest.mark.timeout(120)
def test_the_gradio_api_checks_the_model_and_the_login(demo, label, monkeypatch):
    """The page's API endpoint, called directly: a model that is not offered is refused on
    the server, and with a login nothing answers before it."""
    loads = []
    monkeypatch.setattr(web_demo, "load_model", lambda *a, **k: loads.append(a))
    page = create_web_app(demo)
    _, url, _ = launch_web(
        page, port=free_port(), block=False, auth=login_check({"ann": "pw"})
    )
    try:
        client = httpx.Client(base_url=url, timeout=30)
        call = {"data": ["open_clip:ViT-B-32:/etc/passwd", "A B", [], 20, 0, "face"]}
        assert client.post("/gradio_api/call/attack", json=call).status_code == 401
        assert client.get("/config").status_code == 401
        login = client.post("/login", data={"username": "ann", "password": "pw"})
        assert login.status_code == 200
        event = client.post("/gradio_api/call/attack", json=call).json()["event_id"]
        answer = client.get(f"/gradio_api/call/attack/{event}").text
        assert "event: complete" in answer and NOT_OFFERED in answer
        outside = {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}
        call = {"data": [label, "A B", [outside], 20, 0, "face"]}
        event = client.post("/gradio_api/call/attack", json=call).json()["event_id"]
        answer = client.get(f"/gradio_api/call/attack/{event}").text
        assert "event: error" in answer, "Gradio refuses files that were not uploaded"
        for settings in ([10**9, 0, "face"], [20, "x", "face"], [20, 0, "../x"]):
            call = {"data": [label, "A B", [], *settings]}
            event = client.post("/gradio_api/call/attack", json=call).json()["event_id"]
            answer = client.get(f"/gradio_api/call/attack/{event}").text
            assert "Settings:" in answer, settings
        assert loads == []
    finally:
        page.close()


def test_prompt_embeddings_are_shared_but_faces_are_not_kept(knowing_model):
    """One memory of prompt embeddings per model for all visitors: the decoy prompts of one
    check are the next one's, so only the new name's prompts are encoded; photos are encoded
    for each check and never kept; the memory is bounded by prompts."""
    demo = WebDemo({"Knowing": knowing_model}, prompt_memory=40)
    classifier = demo.classifier("Knowing")
    assert classifier is demo.classifier("Knowing")
    photos = [knowing_model.photo("Jane Doe")]
    decoys = knowing_model.people[:3]

    def groups(name: str) -> list[list[str]]:  # 3 templates x (the name and 3 decoys)
        return [[f"{t} {n}" for n in (name, *decoys)] for t in range(3)]

    classifier.zero_shot(photos, groups("Jane Doe"))
    second = classifier.zero_shot(photos, groups("Ada Lovelace"))  # the next visitor
    assert knowing_model.text_calls == 12 + 3 and knowing_model.image_calls == 2
    assert classifier.texts_in_memory == 24
    fresh = EmbeddingZeroShot(knowing_model).zero_shot(photos, groups("Ada Lovelace"))
    assert np.array_equal(second.scores, fresh.scores)
    for name in ("Max Mustermann", "Erika Musterfrau"):
        classifier.zero_shot(photos, groups(name))
    assert classifier.texts_in_memory == 36, "the oldest check's set was dropped"


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


@contextlib.contextmanager
def browser_page(demo, profile: Path, default_model: str | None = None, **context: Any):
    """The page served on a free loopback port, open in headless Chromium; yields
    (playwright.sync_api, page, url). Skips when Chromium or playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    page_app = create_web_app(demo, default_model=default_model)
    _, url, _ = launch_web(page_app, host="127.0.0.1", port=free_port(), block=False)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                **context,
            )
            try:
                page = browser.new_page()
                page.set_default_timeout(120_000)
                page.goto(url)
                yield sync_api, page, url
            finally:
                browser.close()
    finally:
        page_app.close()


@pytest.mark.timeout(600)
def test_in_a_real_browser(demo, label, pictures, tmp_path):
    with browser_page(demo, tmp_path / "profile", default_model=label) as (sync_api, page, url):
        assert url.startswith("http://127.0.0.1:")
        verdict = page.locator("#verdict")
        page.locator("#run").click()
        sync_api.expect(verdict).to_contain_text("Type the person's full name")
        page.get_by_label("Full name").fill("Ada Lovelace")
        drop_files(page, [pictures["face"], pictures["face2"], pictures["noface"]])
        sync_api.expect(page.locator("#photos")).to_contain_text("grey-wall")
        page.locator("#run").click()
        # a name's first check encodes its full-name decoys (2,000 x 21 prompts)
        sync_api.expect(verdict).to_contain_text("Paper's rule:", timeout=60_000)
        text = verdict.inner_text()
        assert "Ada Lovelace" in text and "has seen this name" in text
        assert "Skipped grey-wall.png: no face found" in text
        sync_api.expect(page.locator("#crops img")).to_have_count(2)
        sync_api.expect(page.locator("#templates")).to_contain_text("a photo of")
        sync_api.expect(page.locator("#explanation")).to_contain_text("What it does not mean")
        sync_api.expect(page.locator("#photos")).not_to_contain_text("grey-wall")
        sync_api.expect(page.locator("#privacy")).to_contain_text("deleted when it ends")
        left = [p for p in demo.upload_dir.rglob("*") if p.is_file()]
        assert left == [], f"photos or crops left on disk: {left}"


@pytest.mark.timeout(600)
def test_lab_examples_in_a_real_browser(browser_demo, tmp_path):
    """A newcomer's first minute: the page opens on the lab model with whole photos (its
    card), one click on the first example shows a YES, one on a non-member a NO. With
    IDIA_WEB_SCREENSHOT=docs/web-page.png the page is saved after the YES; the README's was
    made from the model of `make lab`:

        IDIA_WEB_LAB=lab IDIA_WEB_SCREENSHOT=docs/web-page.png \
            pytest tests/test_web.py -k examples_in_a_real_browser
    """
    (label,) = browser_demo.labs
    member, outsider, *_ = browser_demo.labs[label].examples
    viewport = {"width": 1280, "height": 1000}
    with browser_page(browser_demo, tmp_path / "profile", viewport=viewport) as (
        sync_api, page, _
    ):
        verdict = page.locator("#verdict")
        sync_api.expect(page.locator("#model input")).to_have_value(label)
        page.locator("#settings").get_by_text("Settings").click()
        sync_api.expect(page.locator("#crop input[value=none]")).to_be_checked()
        examples = page.locator("#examples")
        sync_api.expect(examples).to_contain_text(member.label)
        examples.get_by_text(member.label).click()
        sync_api.expect(verdict).to_contain_text(
            f"YES: the model links this face to the name {member.name}"
        )
        sync_api.expect(verdict).to_contain_text("Lab example:")
        sync_api.expect(page.locator("#crops img")).to_have_count(len(member.photos))
        sync_api.expect(page.get_by_label("Full name")).to_have_value(member.name)
        screenshot = os.environ.get("IDIA_WEB_SCREENSHOT")
        if screenshot:  # 256 colours: a third of the size, for the repository
            shot = Image.open(io.BytesIO(page.screenshot(full_page=True)))
            shot.convert("RGB").quantize(256).save(screenshot, optimize=True)
        examples.get_by_text(outsider.label).click()
        sync_api.expect(verdict).to_contain_text(  # this first click encodes the example's
            f"NO: no evidence that the model knows {outsider.name}",  # full-name decoys
            timeout=60_000,
        )
        sync_api.expect(page.locator("#examples-help")).to_contain_text("held-out photos")
