"""RunFolder, the one reader of a run folder: typed access to what the audit wrote, and a
clear error naming the folder and what is missing."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from idia import IdentityInferenceAttack
from idia.audit import run_audit
from idia.evaluation import EvaluationSettings, evaluate_run
from idia.run_folder import RUN_FILES, RunFolder, RunFolderError


@pytest.fixture
def run(knowing_model, tmp_path):
    people = tmp_path / "people"
    for person in knowing_model.people:
        folder = people / person.replace(" ", "_")
        folder.mkdir(parents=True)
        for v in range(3):
            knowing_model.photo(person, v).save(folder / f"{v}.png")
    membership = tmp_path / "membership.csv"
    pd.DataFrame({"name": knowing_model.people,
                  "member": [p in knowing_model.known for p in knowing_model.people]}
                 ).to_csv(membership, index=False)
    attack = IdentityInferenceAttack(knowing_model, crop="none", num_names=60, seed=2,
                                     name_decoys=200, progress=False)
    run_audit(attack, people, tmp_path / "run", membership, log=lambda m: None)
    return tmp_path / "run"


def test_a_finished_run_reads_as_typed_tables(run, knowing_model):
    folder = RunFolder(run)
    assert folder.config["seed"] == 2
    assert sorted(folder.config["people"]) == sorted(knowing_model.people)
    candidates = folder.candidates
    assert len(candidates) == 60 and candidates.n_real == len(knowing_model.people)
    assert candidates.seed == 2 and candidates.source.startswith(f"audit run {run} (")
    results = folder.results
    assert results["name"].tolist() == folder.config["people"]
    assert results["truth"].tolist() == [p in knowing_model.known for p in results["name"]]
    assert folder.summary == json.loads((run / "summary.json").read_text())
    assert folder.summary["n_people"] == len(knowing_model.people)
    assert set(folder.photos["status"]) == {"ok"} and len(folder.photos) == 3 * 6
    assert len(folder.predictions) == 3 * 6 * 21
    assert isinstance(folder.responses, pa.Table) and folder.responses.num_rows == 3 * 6
    assert len(folder.text_only) == len(knowing_model.people)
    assert folder.evaluation is None, "not evaluated yet"
    document = evaluate_run(run, EvaluationSettings(sizes=[1, 3], draws=2))
    assert RunFolder(run).evaluation == json.loads(json.dumps(document))
    assert {p.name for p in run.iterdir()} - {"parts"} <= RUN_FILES


def test_a_missing_or_unreadable_file_is_named(run, tmp_path):
    with pytest.raises(RunFolderError, match="run folder not found"):
        RunFolder(tmp_path / "nowhere")
    with pytest.raises(RunFolderError, match="is not a folder"):
        RunFolder(run / "results.csv")
    with pytest.raises(RunFolderError, match=f"{tmp_path / 'people'} is not an idia run folder: "
                                             "missing config.json, candidates.parquet"):
        RunFolder(tmp_path / "people")
    (run / "summary.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="cannot read .*summary.json"):
        _ = RunFolder(run).summary
    (run / "results.parquet").unlink()
    with pytest.raises(RunFolderError, match=r"is an unfinished run \(rerun the same 'idia "
                                             r"audit' command to finish it\): missing "
                                             "results.parquet"):
        RunFolder(run)
    started = RunFolder(run, finished=False)  # enough for the candidates and settings
    assert len(started.candidates) == 60 and started.config["seed"] == 2
    with pytest.raises(RunFolderError, match="missing results.parquet"):
        _ = started.results
    (run / "responses.parquet").unlink()
    assert started.responses is None, "a closed-box model's run has no responses"
