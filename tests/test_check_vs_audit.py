"""`idia check --candidates RUN`: a person's check inside an audit's candidate set gives the
audit's verdict for them; a name outside that set is refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from idia import IdentityInferenceAttack
from idia.audit import run_audit
from idia.cli import app
from idia.engine import AttackInputError

runner = CliRunner()


def test_check_in_the_audits_candidate_set_gives_the_audits_verdict(knowing_model, tmp_path):
    people = tmp_path / "people"
    for person in knowing_model.people:
        (people / person.replace(" ", "_")).mkdir(parents=True)
        for v in range(3):
            knowing_model.photo(person, v).save(people / person.replace(" ", "_") / f"{v}.png")
    attack = IdentityInferenceAttack(knowing_model, crop="none", num_names=60, seed=5,
                                     name_decoys=200, progress=False)
    run_audit(attack, people, tmp_path / "run", log=lambda m: None)
    results = pd.read_parquet(tmp_path / "run" / "results.parquet").set_index("name")
    for person in knowing_model.people:
        photos = sorted((people / person.replace(" ", "_")).iterdir())
        for where in (tmp_path / "run", tmp_path / "run" / "candidates.parquet"):
            result = attack.check(photos, person, candidates=where)
            row = results.loc[person]
            assert (result.score, result.member) == (row["score"], row["member"]), person
            # the same name test as the audit's (before its correction across people)
            assert result.claims["name_familiarity"].p_value == pytest.approx(row["p_name"])
            assert result.n_candidates == 60 and result.extra["differs_from_audit"] == []
    with pytest.raises(AttackInputError, match="not among the 60 candidates"):
        attack.check(photos, "Someone Else", candidates=tmp_path / "run")
    with pytest.raises(AttackInputError, match="not an idia run folder"):
        attack.check(photos, person, candidates=tmp_path / "people")


def test_cli_check_with_an_audits_candidates(tiny_open_clip, tmp_path):
    """A random model: whatever it answers, check and audit must agree person by person."""
    config, checkpoint = tiny_open_clip
    spec = f"open_clip:{config}:{checkpoint}"
    rng = np.random.default_rng(0)
    names = ["Ada Moreno", "Ben Carter", "Cleo Nakamura", "Dev Patel"]
    for i, name in enumerate(names):
        folder = tmp_path / "people" / name.replace(" ", "_")
        folder.mkdir(parents=True)
        for v in range(3):
            pixels = rng.integers(0, 255, (40, 40, 3)) // 2 + 30 * i
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{v}.png")
    common = ["--model", spec, "--crop", "none", "--num-names", "25", "--seed", "2",
              "--name-decoys", "200", "--cache-dir", str(tmp_path / "c")]
    audited = runner.invoke(app, ["audit", "--people", str(tmp_path / "people"),
                                  "--out", str(tmp_path / "run"), "--quiet", *common])
    assert audited.exit_code == 0, audited.output
    results = pd.read_csv(tmp_path / "run" / "results.csv").set_index("name")
    for name in names:
        photos = sorted(str(p) for p in (tmp_path / "people" / name.replace(" ", "_")).iterdir())
        checked = runner.invoke(app, ["check", *photos, "--name", name, "--json", *common,
                                      "--candidates", str(tmp_path / "run")])
        assert checked.exit_code == 0, checked.output
        payload = json.loads(checked.stdout)
        assert payload["score"] == results.loc[name, "score"], name
        assert payload["member"] == results.loc[name, "member"], name
        assert payload["n_candidates"] == 25 and "audit run" in payload["candidate_source"]
    outsider = runner.invoke(app, ["check", photos[0], "--name", "Jane Doe", *common,
                                   "--candidates", str(tmp_path / "run" / "candidates.parquet")])
    assert outsider.exit_code == 2 and "error:" in outsider.output
    assert "'Jane Doe' is not among the 25 candidates" in outsider.output
    other = runner.invoke(app, ["check", photos[0], "--name", names[0], *common, "--json",
                                "--threshold", "3", "--candidates", str(tmp_path / "run")])
    assert other.exit_code == 0 and "differs from the audit run in threshold" in other.output
