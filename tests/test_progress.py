"""Progress output: a bar on a terminal, whole lines in logs, nothing when quiet."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from tqdm.std import tqdm
from typer.testing import CliRunner

from idia.cli import app
from idia.progress import PlainLines, progress, track


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_stage_ends_with_one_line() -> None:
    log = io.StringIO()
    with progress(21_000, "encoding prompts", stream=log) as stage:
        for _ in range(21):
            stage.update(1_000)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in log.getvalue()
    assert lines[0].startswith("encoding prompts: 21,000/21,000 done in ")
    assert lines[0].endswith(" s")


def test_a_long_stage_also_writes_a_line_now_and_then() -> None:
    log = io.StringIO()
    with PlainLines(4, "counting names", log, interval_s=0.0) as stage:
        for done in range(4):
            stage.set_postfix(captions=f"{done * 1000:,}")
            stage.update(1)
    lines = log.getvalue().splitlines()
    assert [line.split(" after ")[0] for line in lines[:3]] == [
        "counting names: 1/4 (25%)",
        "counting names: 2/4 (50%)",
        "counting names: 3/4 (75%)",
    ]
    assert lines[3].startswith("counting names: 4/4 done in ")
    assert lines[3].endswith(" s (captions=3,000)")


def test_a_stage_left_early_says_where_it_stopped() -> None:
    log = io.StringIO()
    for person in track(["a", "b", "c"], "people", stream=log):
        if person == "b":
            break
    assert log.getvalue().startswith("people: 1/3 stopped after ")


def test_an_empty_stage_writes_nothing() -> None:
    log = io.StringIO()
    with progress(0, "encoding images", stream=log):
        pass
    assert log.getvalue() == ""


def test_a_terminal_gets_a_bar_and_quiet_gets_nothing() -> None:
    terminal = Terminal()
    with progress(3, "people", stream=terminal) as stage:
        assert isinstance(stage, tqdm)
        stage.update(3)
    assert "people" in terminal.getvalue()
    for stream in (Terminal(), io.StringIO()):
        assert list(track([1, 2], "people", enabled=False, stream=stream)) == [1, 2]
        assert stream.getvalue() == ""


@pytest.mark.slow
def test_idia_check_writes_plain_stage_lines_to_a_log(
    tiny_open_clip: tuple[Path, Path], origin_table: object, origin_table_dir: Path,
    tmp_path: Path,
) -> None:
    config, checkpoint = tiny_open_clip
    spec = f"open_clip:{config}:{checkpoint}"
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), (200, 120, 80)).save(photo)
    arguments = ["check", str(photo), "--name", "Ann Lee", "--model", spec, "--crop", "none"]
    arguments += ["--num-names", "50", "--name-decoys", "200", "--cache-dir",
                  str(tmp_path / "cache")]
    log = tmp_path / "check.log"
    with log.open("w") as stderr:
        subprocess.run(  # the session's origin table, never one in a user's cache folder
            [sys.executable, "-c", "from idia.cli import main; main()", *arguments],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            check=True,
            timeout=600,
            env={**os.environ, "IDIA_CACHE_DIR": str(origin_table_dir)},
        )
    raw = log.read_bytes()  # not read_text: universal newlines would turn each \r into \n
    assert b"\r" not in raw
    text = raw.decode()
    stages = [line.split(" done in ")[0] for line in text.splitlines()
              if line.startswith("encoding ")]
    # the name parts of the decoys' pools, the decoys, the photo, the paper's candidates: one
    # plain line per finished stage
    assert "encoding images: 1/1" in stages and len(stages) >= 3, text
    for stage in stages:
        done, total = stage.split(": ")[1].split("/")
        assert stage.startswith(("encoding prompts: ", "encoding images: ")) and done == total
    quiet = CliRunner().invoke(app, [*arguments[:-2], "--no-cache", "--quiet"])
    assert quiet.exit_code == 0, quiet.output
    assert "encoding" not in quiet.stderr
