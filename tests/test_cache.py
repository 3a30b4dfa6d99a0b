"""The embedding cache: faces stay out unless asked for, files are private, a broken cache never
stops a run, and `idia cache info/purge` show and delete it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import subprocess

import pytest
from PIL import Image
from typer.testing import CliRunner

from idia import create_attack
from idia.cache import EmbeddingCache, cache_info
from idia.cli import app

runner = CliRunner()


def attack(model, cache_dir, **kwargs):
    return create_attack(model, crop="none", num_names=50, name_decoys=200, seed=1,
                         cache_dir=cache_dir, progress=False, **kwargs)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_photos_are_cached_only_when_asked(knowing_model, tmp_path):
    photos = [knowing_model.photo("Jane Doe", v) for v in range(3)]
    first = attack(knowing_model, tmp_path / "c")
    first.check(photos, "Jane Doe")
    texts = first.classifier.encoded_texts  # the paper's candidates, the name tests' decoys
    info = cache_info(tmp_path / "c")
    assert info["texts"] == texts > 21 * 50 and info["images"] == 0
    assert info["bytes"] > 0 and info["path"] == str(tmp_path / "c" / "embeddings.sqlite")
    attack(knowing_model, tmp_path / "c").check(photos, "Jane Doe")
    assert knowing_model.image_calls == 6 and knowing_model.text_calls == texts
    opted_in = attack(knowing_model, tmp_path / "c", cache_images=True)
    opted_in.check(photos, "Jane Doe")
    assert cache_info(tmp_path / "c")["images"] == 3
    attack(knowing_model, tmp_path / "c", cache_images=True).check(photos, "Jane Doe")
    assert knowing_model.image_calls == 9, "a fresh process reads the photos from disk"


def test_cache_folder_and_files_are_private(knowing_model, tmp_path):
    old = tmp_path / "old"  # as an older idia left it: 0755 folder, 0644 database
    old.mkdir(mode=0o755)
    os.chmod(old, 0o755)
    EmbeddingCache(old).close()
    os.chmod(old, 0o755)
    os.chmod(old / "embeddings.sqlite", 0o644)
    for folder in (tmp_path / "new" / "idia", old):
        running = attack(knowing_model, folder)
        running.check([knowing_model.photo("Jane Doe")], "Jane Doe")
        files = list(folder.iterdir())  # while open: the SQLite side files exist too
        assert {f.name for f in files} == {"embeddings.sqlite", "embeddings.sqlite-wal",
                                           "embeddings.sqlite-shm"}
        assert mode(folder) == 0o700, folder
        assert all(mode(f) == 0o600 for f in files), [(f.name, oct(mode(f))) for f in files]
        running.cache.close()


def test_a_folder_the_user_chose_is_not_chmodded(tmp_path):
    chosen = tmp_path / "project"
    chosen.mkdir()
    os.chmod(chosen, 0o755)
    EmbeddingCache(chosen).close()
    assert mode(chosen) == 0o755 and mode(chosen / "embeddings.sqlite") == 0o600


def test_a_corrupt_cache_warns_and_the_run_goes_on(knowing_model, tmp_path, caplog):
    (tmp_path / "c").mkdir()
    garbage = b"this is not a database" * 100
    (tmp_path / "c" / "embeddings.sqlite").write_bytes(garbage)
    with caplog.at_level(logging.WARNING, logger="idia.cache"):
        result = attack(knowing_model, tmp_path / "c").check(
            [knowing_model.photo("Conan O'Brien")], "Conan O'Brien")
    assert result.member and result.score == 21
    assert "embedding cache" in caplog.text and "going on without it" in caplog.text
    assert f"idia cache purge --cache-dir {tmp_path / 'c'}" in caplog.text
    assert (tmp_path / "c" / "embeddings.sqlite").read_bytes() == garbage, "left as it was"
    info = runner.invoke(app, ["cache", "info", "--cache-dir", str(tmp_path / "c")])
    assert info.exit_code == 2 and "not a readable idia embedding cache" in info.output
    purged = runner.invoke(app, ["cache", "purge", "--cache-dir", str(tmp_path / "c")])
    assert purged.exit_code == 0 and not (tmp_path / "c" / "embeddings.sqlite").exists()


@contextlib.contextmanager
def read_only(folder):
    """A folder nobody can write to, root included (chmod alone does not stop root)."""
    os.chmod(folder, 0o500)
    immutable = False
    if os.geteuid() == 0:
        if not shutil.which("chattr") or subprocess.run(
                ["chattr", "+i", str(folder)], capture_output=True).returncode:
            os.chmod(folder, 0o700)
            pytest.skip("running as root without chattr: cannot make a read-only folder")
        immutable = True
    try:
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        os.chmod(folder, 0o700)


@pytest.mark.parametrize("with_cache", [False, True], ids=["empty", "holding-a-cache"])
def test_a_read_only_cache_folder_warns_and_the_run_goes_on(knowing_model, tmp_path, caplog,
                                                             with_cache):
    folder = tmp_path / "c"
    folder.mkdir()
    if with_cache:
        attack(knowing_model, folder).check([knowing_model.photo("Jane Doe")], "Jane Doe")
    before = sorted(p.name for p in folder.iterdir())
    with read_only(folder), caplog.at_level(logging.WARNING, logger="idia.cache"):
        result = attack(knowing_model, folder).check(
            [knowing_model.photo("Conan O'Brien")], "Conan O'Brien")
    assert result.member and "going on without it" in caplog.text
    assert sorted(p.name for p in folder.iterdir()) == before


def test_cli_cache_info_and_purge(knowing_model, tmp_path):
    folder = tmp_path / "c"
    checked = attack(knowing_model, folder, cache_images=True)
    checked.check([knowing_model.photo("Jane Doe", v) for v in range(2)], "Jane Doe")
    texts = checked.classifier.encoded_texts
    (folder / "notes.txt").write_text("mine")
    shown = runner.invoke(app, ["cache", "info", "--cache-dir", str(folder), "--json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.stdout)
    assert set(info) == {"path", "bytes", "texts", "images", "reference_images"}
    assert (info["texts"], info["images"]) == (texts, 2) and info["bytes"] > texts * 64 * 4
    human = runner.invoke(app, ["cache", "info", "--cache-dir", str(folder)])
    assert f"{texts:,} prompt embeddings, 2 photo embeddings" in human.stdout
    purged = runner.invoke(app, ["cache", "purge", "--cache-dir", str(folder)])
    assert purged.exit_code == 0 and "deleted embeddings.sqlite" in purged.stdout
    assert [p.name for p in folder.iterdir()] == ["notes.txt"], "only the cache is deleted"
    empty = json.loads(runner.invoke(app, ["cache", "info", "--cache-dir", str(folder),
                                           "--json"]).stdout)
    assert (empty["bytes"], empty["texts"], empty["images"]) == (0, 0, 0)
    assert "nothing to purge" in runner.invoke(
        app, ["cache", "purge", "--cache-dir", str(folder)]).stdout
    runner.invoke(app, ["cache", "info", "--cache-dir", str(tmp_path / "nowhere")])
    assert not (tmp_path / "nowhere").exists(), "info creates nothing"


def test_cli_check_caches_photos_only_with_the_flag(tiny_open_clip, tmp_path):
    config, checkpoint = tiny_open_clip
    photo = tmp_path / "me.png"
    Image.new("RGB", (48, 48), (200, 150, 120)).save(photo)
    folder = tmp_path / "c"
    args = ["check", str(photo), "--name", "Jane Doe", "--model",
            f"open_clip:{config}:{checkpoint}", "--crop", "none", "--num-names", "20", "--json",
            "--name-decoys", "200", "--cache-dir", str(folder)]
    assert runner.invoke(app, args).exit_code == 0
    # the paper's 20 candidates, 200 decoys of the name tests and the parts of their pools
    assert cache_info(folder)["images"] == 0 and cache_info(folder)["texts"] > 21 * 220
    assert runner.invoke(app, [*args, "--cache-images"]).exit_code == 0
    assert cache_info(folder)["images"] == 1
