"""idia audit: run folders, metrics against membership, resumption, bad input, the CLI."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from idia import IdentityInferenceAttack, create_attack
from idia.audit import AuditError, run_audit, write_json
from idia.cli import app

runner = CliRunner()


def people_folder(root, model, photos=4, folder_names=None):
    root.mkdir(parents=True, exist_ok=True)
    for person in model.people:
        folder = root / (folder_names or {}).get(person, person.replace(" ", "_"))
        folder.mkdir()
        for v in range(photos):
            model.photo(person, v).save(folder / f"{v}.png")
    return root


def membership_csv(path, model):
    rows = [{"name": p, "member": p in model.known, "count": 10 if p in model.known else 0}
            for p in model.people]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def attack_for(model, tmp_path):
    return create_attack(model, crop="none", num_names=100, name_decoys=200, seed=3,
                         cache_dir=tmp_path / "cache", progress=False)


def test_audit_writes_a_complete_run_folder(knowing_model, tmp_path):
    people = people_folder(tmp_path / "people", knowing_model)
    csv = membership_csv(tmp_path / "m.csv", knowing_model)
    summary = run_audit(attack_for(knowing_model, tmp_path), people, tmp_path / "run", csv,
                        log=lambda m: None)
    assert (summary["tp"], summary["fp"], summary["fn"], summary["tn"]) == (3, 0, 0, 3)
    assert summary["tpr"] == 1.0 and summary["fpr"] == 0.0 and summary["accuracy"] == 1.0
    run = tmp_path / "run"
    for name in ("config.json", "candidates.parquet", "photos.parquet", "predictions.parquet",
                 "results.parquet", "results.csv", "summary.json"):
        assert (run / name).exists(), name
    predictions = pd.read_parquet(run / "predictions.parquet")
    assert len(predictions) == 6 * 4 * 21
    results = pd.read_csv(run / "results.csv")
    assert set(results["outcome"]) == {"TP", "TN"}
    assert results.set_index("name").loc["Conan O'Brien", "score"] == 21
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 3 and len(config["templates"]) == 21
    candidates = pd.read_parquet(run / "candidates.parquet")
    assert candidates["is_real"].sum() == 6 and len(candidates) == 100


class DiesAfter:
    """Wraps a model and fails after a number of image encodings, like a killed process."""

    def __init__(self, model, images):
        self.model, self.left = model, images
        self.name, self.identity, self.logit_scale = model.name, model.identity, 100.0

    def encode_texts(self, texts):
        return self.model.encode_texts(texts)

    def encode_images(self, images):
        self.left -= len(images)
        if self.left < 0:
            raise KeyboardInterrupt
        return self.model.encode_images(images)


def test_an_interrupted_audit_resumes_and_loses_nothing(knowing_model, tmp_path):
    people = people_folder(tmp_path / "people", knowing_model)
    csv = membership_csv(tmp_path / "m.csv", knowing_model)
    complete = run_audit(attack_for(knowing_model, tmp_path / "a"), people, tmp_path / "full",
                         csv, log=lambda m: None)
    dying = DiesAfter(knowing_model, images=9)  # dies during the third person
    with pytest.raises(KeyboardInterrupt):
        run_audit(attack_for(dying, tmp_path / "b"), people, tmp_path / "run", csv,
                  log=lambda m: None)
    done = sorted((tmp_path / "run" / "parts").glob("*.predictions.parquet"))
    assert len(done) == 2 and not list((tmp_path / "run" / "parts").glob("*.tmp"))
    knowing_model.image_calls = 0
    messages = []
    resumed = run_audit(attack_for(knowing_model, tmp_path / "c"), people, tmp_path / "run",
                        csv, log=messages.append)
    assert knowing_model.image_calls == 4 * 4, "only the four unfinished people are attacked"
    assert any("resuming: 2 of 6" in m for m in messages)
    assert resumed == complete
    full = pd.read_parquet(tmp_path / "full" / "predictions.parquet")
    again = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    pd.testing.assert_frame_equal(full, again)


def test_a_run_folder_with_other_settings_is_not_mixed(knowing_model, tmp_path):
    people = people_folder(tmp_path / "people", knowing_model)
    run_audit(attack_for(knowing_model, tmp_path), people, tmp_path / "run", log=lambda m: None)
    other = create_attack(knowing_model, crop="none", num_names=100, name_decoys=200, seed=4,
                          cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(AuditError, match="other settings \\(seed"):
        run_audit(other, people, tmp_path / "run", log=lambda m: None)
    summary = run_audit(other, people, tmp_path / "run", overwrite=True, log=lambda m: None)
    assert summary["n_people"] == 6


def a_project(root):
    """What `--out .` finds inside someone's project: its own config.json among its files."""
    (root / "src").mkdir(parents=True)
    (root / "config.json").write_text('{"name": "my project"}')
    (root / "src" / "main.py").write_text("print('hello')")
    return root


def test_overwrite_never_deletes_a_folder_idia_did_not_create(knowing_model, tmp_path):
    people = people_folder(tmp_path / "people", knowing_model, photos=1)
    project = a_project(tmp_path / "project")
    before = sorted(str(p) for p in project.rglob("*"))
    with pytest.raises(AuditError, match="not an idia run folder.*\\.idia-run"):
        run_audit(attack_for(knowing_model, tmp_path), people, project, overwrite=True,
                  log=lambda m: None)
    assert sorted(str(p) for p in project.rglob("*")) == before, "nothing was deleted"

    run = tmp_path / "run"
    run_audit(attack_for(knowing_model, tmp_path), people, run, log=lambda m: None)
    assert json.loads((run / ".idia-run").read_text())["idia_run_format"] == 1
    (run / "report.html").write_text("<html></html>")  # what evaluate / report add is fine
    (run / "report_figures").mkdir()
    (run / "report_figures" / "roc.png").write_bytes(b"png")
    (run / "notes.txt").write_text("my notes")  # anything else stops the deletion
    other = create_attack(knowing_model, crop="none", num_names=100, name_decoys=200, seed=4,
                          cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(AuditError, match="does not write \\(notes.txt\\); nothing deleted"):
        run_audit(other, people, run, overwrite=True, log=lambda m: None)
    assert (run / "summary.json").exists() and (run / "report.html").exists()
    (run / "notes.txt").unlink()
    assert run_audit(other, people, run, overwrite=True, log=lambda m: None)["n_people"] == 6
    assert not (run / "report.html").exists() and (run / ".idia-run").exists()
    assert json.loads((run / "config.json").read_text())["seed"] == 4


def test_a_run_begun_before_the_marker_resumes_but_is_never_deleted(knowing_model, tmp_path):
    people = people_folder(tmp_path / "people", knowing_model, photos=1)
    run = tmp_path / "run"
    run_audit(attack_for(knowing_model, tmp_path), people, run, log=lambda m: None)
    (run / ".idia-run").unlink()
    messages = []
    run_audit(attack_for(knowing_model, tmp_path), people, run, log=messages.append)
    assert "resuming: 6 of 6 people already done" in messages and (run / ".idia-run").exists()
    (run / ".idia-run").unlink()
    other = create_attack(knowing_model, crop="none", num_names=100, name_decoys=200, seed=4,
                          cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(AuditError, match="not an idia run folder"):
        run_audit(other, people, run, overwrite=True, log=lambda m: None)
    assert (run / "summary.json").exists()


def test_writes_reach_the_disk_before_they_count(tmp_path, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        fsync(fd)

    def recording_replace(source, target):
        events.append(("replace", os.stat(source).st_ino))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    write_json(tmp_path / "summary.json", {"tp": 1})
    file, folder = (tmp_path / "summary.json").stat().st_ino, tmp_path.stat().st_ino
    assert events == [("fsync", file), ("replace", file), ("fsync", folder)]


def test_damaged_parts_are_redone_on_resume(knowing_model, tmp_path):
    people = people_folder(tmp_path / "people", knowing_model)
    csv = membership_csv(tmp_path / "m.csv", knowing_model)
    complete = run_audit(attack_for(knowing_model, tmp_path), people, tmp_path / "run", csv,
                         log=lambda m: None)
    full = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    parts = tmp_path / "run" / "parts"
    (parts / "000000.predictions.parquet").write_bytes(b"")  # a crash before fsync
    (parts / "000001.photos.parquet").write_bytes(b"PAR1 garbage")
    (parts / "000003.predictions.parquet").write_bytes(
        (parts / "000002.predictions.parquet").read_bytes())  # someone else's rows
    half = pd.read_parquet(parts / "000004.predictions.parquet")
    half.iloc[: len(half) // 2].to_parquet(parts / "000004.predictions.parquet", index=False)
    knowing_model.image_calls = 0
    messages = []
    resumed = run_audit(attack_for(knowing_model, tmp_path), people, tmp_path / "run", csv,
                        log=messages.append)
    redone = [m for m in messages if m.startswith("warning: redoing")]
    assert len(redone) == 4, messages
    assert "unreadable" in redone[0] and "another person" in redone[2] and "rows" in redone[3]
    assert "resuming: 2 of 6 people already done" in messages
    assert knowing_model.image_calls == 4 * 4, "only the four damaged people are attacked"
    assert resumed == complete
    pd.testing.assert_frame_equal(full, pd.read_parquet(tmp_path / "run" / "predictions.parquet"))


def test_an_audit_without_a_usable_photo_fails_and_stays_resumable(knowing_model, tmp_path):
    people = tmp_path / "people"
    for name in ("Jane Doe", "Max Mustermann"):
        (people / name).mkdir(parents=True)
        Image.new("RGB", (120, 120), (120, 160, 90)).save(people / name / "lawn.png")
    (people / "Erika Musterfrau").mkdir()
    (people / "Erika Musterfrau" / "broken.jpg").write_bytes(b"not a photo")
    attack = IdentityInferenceAttack(knowing_model, crop="face", detector="haar", num_names=50,
                                     name_decoys=200, progress=False)
    message = ("none of the 3 people has a usable photo (3 photos: 2 no face found, "
               "1 unreadable); try --crop none")
    with pytest.raises(AuditError, match=message.replace("(", "\\(").replace(")", "\\)")):
        run_audit(attack, people, tmp_path / "run", log=lambda m: None)
    assert len(list((tmp_path / "run" / "parts").glob("*.parquet"))) == 6
    assert not (tmp_path / "run" / "summary.json").exists()
    messages = []
    with pytest.raises(AuditError, match="none of the 3 people"):
        run_audit(attack, people, tmp_path / "run", log=messages.append)
    assert "resuming: 3 of 3 people already done" in messages


def test_people_folder_problems(knowing_model, tmp_path):
    attack = attack_for(knowing_model, tmp_path)
    with pytest.raises(AuditError, match="not found"):
        run_audit(attack, tmp_path / "nope", tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AuditError, match="no person folders"):
        run_audit(attack, tmp_path / "empty", tmp_path / "run")
    dup = people_folder(tmp_path / "dup", knowing_model, photos=1)
    (dup / "jane doe").mkdir()
    with pytest.raises(AuditError, match="several folders"):
        run_audit(attack, dup, tmp_path / "run")


def test_unusable_photos_and_people_without_photos_are_reported(knowing_model, tmp_path):
    people = people_folder(tmp_path / "people", knowing_model, photos=2)
    (people / "Jane_Doe" / "broken.jpg").write_bytes(b"")
    (people / "Nobody_Here").mkdir()
    membership = tmp_path / "m.csv"
    membership_csv(membership, knowing_model)
    with membership.open("a") as handle:
        handle.write("Ghost Person,true,3\n")
    messages = []
    run_audit(attack_for(knowing_model, tmp_path), people, tmp_path / "run", membership,
              log=messages.append)
    assert any("Nobody_Here: no image files" in m for m in messages)
    assert any("Ghost Person" in m and "no photos" in m for m in messages)
    photos = pd.read_parquet(tmp_path / "run" / "photos.parquet")
    broken = photos[photos["path"].str.endswith("broken.jpg")]
    assert broken["status"].tolist() == ["unreadable"]
    results = pd.read_parquet(tmp_path / "run" / "results.parquet").set_index("name")
    assert results.loc["Jane Doe", "n_skipped"] == 1 and results.loc["Jane Doe", "n_photos"] == 2


def test_papers_membership_file_is_accepted(shared_data, knowing_model, tmp_path):
    from idia.membership import read_membership

    table = read_membership(shared_data / "captions" / "laion400m_name_counts_paper.csv")
    assert len(table) == 548
    leon = table.set_index("key").loc["adrianne leon"]
    assert not leon["member"] and leon["count"] == 0
    assert table["member"].sum() == (table["count"] > 0).sum()


def save_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 48), (200, 150, 120)).save(path)
    return path


def test_cli_check_json_and_errors(tiny_open_clip, tmp_path):
    config, checkpoint = tiny_open_clip
    spec = f"open_clip:{config}:{checkpoint}"
    photo = save_image(tmp_path / "me" / "1.png")
    common = ["--model", spec, "--crop", "none", "--num-names", "50", "--name-decoys", "200",
              "--cache-dir", str(tmp_path / "c")]
    result = runner.invoke(app, ["check", str(photo), "--name", "Conan O'Brien", "--json",
                                 *common])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n_candidates"] == 50 and len(payload["templates"]) == 21
    assert {"template", "prediction", "votes", "correct"} <= payload["templates"][0].keys()
    assert set(payload["claims"]) == {"name_familiarity", "face_association", "text_only"}
    assert payload["claims"]["face_association"]["tested"] is False
    human = runner.invoke(app, ["check", str(photo), "--name", "Conan O'Brien", *common])
    text = " ".join(human.stdout.split())
    # the human output states the same figures as the JSON
    assert human.exit_code == 0
    assert f"Paper's rule: {payload['score']}/21 templates" in text
    p_name = payload["claims"]["name_familiarity"]["p_value"]
    assert "has seen this name" in text and f" {p_name:.3g}" in text
    sentence = payload["verdict"] or "no evidence"
    assert sentence.replace("_", " ").split()[0] in text.split("Verdict:")[1].lower()

    def fails(args, text):
        outcome = runner.invoke(app, args)
        assert outcome.exit_code == 2, (args, outcome.output)
        assert text in outcome.output and "Traceback" not in outcome.output

    fails(["check", str(tmp_path / "nope.jpg"), "--name", "A B", *common], "not found")
    fails(["check", str(photo), "--name", " ", *common], "name is empty")
    fails(["check", str(photo), "--name", "A B", "--model", "open_clip:Nope-1:x"],
          "unknown open_clip architecture")
    (tmp_path / "zero.jpg").write_bytes(b"")
    fails(["check", str(tmp_path / "zero.jpg"), "--name", "A B", *common], "none of the 1")
    fails(["check", str(photo), "--name", "A B", *common, "--crop", "eyes"], "--crop")
    fails(["audit", "--people", str(tmp_path / "none"), "--out", str(tmp_path / "r"), *common],
          "people folder not found")


def test_cli_audit_end_to_end(tiny_open_clip, tmp_path):
    config, checkpoint = tiny_open_clip
    for person in ("Adrianne León", "Conan O'Brien", "Lin-Manuel Miranda"):
        for i in range(2):
            save_image(tmp_path / "people" / person / f"{i}.jpg")
    pd.DataFrame({"name": ["Adrianne Leon", "Conan O'Brien", "Lin-Manuel Miranda"],
                  "member": ["member", "non_member", "member"]}).to_csv(tmp_path / "m.csv",
                                                                         index=False)
    args = ["audit", "--people", str(tmp_path / "people"), "--model",
            f"open_clip:{config}:{checkpoint}", "--out", str(tmp_path / "run"), "--membership",
            str(tmp_path / "m.csv"), "--crop", "none", "--num-names", "40", "--quiet",
            "--name-decoys", "200", "--cache-dir", str(tmp_path / "c")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    # the summary counts are the per-person verdicts against the membership table
    truth = results["name"].map({"Adrianne León": True, "Conan O'Brien": False,
                                 "Lin-Manuel Miranda": True})
    assert summary["n_judged"] == 3
    assert summary["tp"] == int((results["member"] & truth).sum())
    assert summary["fp"] == int((results["member"] & ~truth).sum())
    assert summary["rules"]["paper"]["n_members"] == 2
    name_tp = int((results["name_verdict"] & truth).sum())
    assert summary["rules"]["name_familiarity"]["tp"] == name_tp
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "resuming: 3 of 3" in again.output
    assert pd.read_csv(tmp_path / "run" / "results.csv").equals(results)


def test_cli_uses_the_papers_name_files(shared_data, tiny_open_clip, tmp_path):
    config, checkpoint = tiny_open_clip
    photo = save_image(tmp_path / "1.png")
    names = shared_data / "names"
    result = runner.invoke(app, [
        "check", str(photo), "--name", "Jane Doe", "--model", f"open_clip:{config}:{checkpoint}",
        "--crop", "none", "--num-names", "30", "--json", "--cache-dir", str(tmp_path / "c"),
        "--name-decoys", "200", "--first-names", str(names / "ssa_first_names_top1000_by_sex.csv"),
        "--surnames", str(names / "census2010_surnames_top1000.csv")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert "census2010_surnames_top1000.csv" in payload["candidate_source"]


def test_cli_audit_refuses_out_dot_in_a_project_and_fails_without_usable_photos(
        tiny_open_clip, tmp_path, monkeypatch):
    config, checkpoint = tiny_open_clip
    save_image(tmp_path / "people" / "Jane Doe" / "1.png")
    save_image(tmp_path / "people" / "Max Mustermann" / "1.png")
    common = ["--people", str(tmp_path / "people"), "--model", f"open_clip:{config}:{checkpoint}",
              "--num-names", "20", "--name-decoys", "200", "--quiet", "--cache-dir",
              str(tmp_path / "c")]
    project = a_project(tmp_path / "project")
    before = sorted(str(p) for p in project.rglob("*"))
    monkeypatch.chdir(project)
    result = runner.invoke(app, ["audit", *common, "--crop", "none", "--out", ".",
                                 "--overwrite"])
    assert result.exit_code == 2 and "not an idia run folder" in result.output
    assert sorted(str(p) for p in project.rglob("*")) == before, "nothing was deleted"
    faceless = runner.invoke(app, ["audit", *common, "--out", str(tmp_path / "run")])
    assert faceless.exit_code == 2, faceless.output
    assert faceless.output.strip().splitlines()[-1] == (
        "error: none of the 2 people has a usable photo (2 photos: 2 no face found); "
        "try --crop none")


def test_membership_origin_column_is_read_as_country_codes(tmp_path):
    from idia.membership import MembershipError, read_membership

    path = tmp_path / "m.csv"
    pd.DataFrame({"name": ["Jan Kowalski", "Tom Baker", "Wen Jiabao"],
                  "member": [1, 0, 0], "origin": [" pl", "", "CN"]}).to_csv(path, index=False)
    table = read_membership(path).set_index("name")
    assert table.loc["Jan Kowalski", "origin"] == "PL"
    assert pd.isna(table.loc["Tom Baker", "origin"]), "empty: inferred from the name"
    assert table.loc["Wen Jiabao", "origin"] == "CN"
    pd.DataFrame({"name": ["Jan Kowalski"], "member": [1], "origin": ["Poland"]}).to_csv(
        path, index=False)
    with pytest.raises(MembershipError, match="two-letter country codes"):
        read_membership(path)
