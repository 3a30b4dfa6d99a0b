"""The training protocol: exact injection counts, held-out attack photos, masking, training."""

from __future__ import annotations

import csv
import io
import re
import tarfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from idia import synthetic
from idia.audit import discover_people
from idia.cli import app
from idia.lab.train import (
    CAPTION_TEMPLATES,
    Pair,
    TrainDataError,
    TrainSettings,
    build_train_command,
    compose_training_set,
    load_trained_model,
    parse_inject,
    read_caption_csv,
    read_webdataset,
    resolve_model_config,
    train_clip,
    write_training_set,
)
from idia.models.card import card_path, find_card, read_card
from idia.people import find_people
from idia.prompts import PAPER_TEMPLATES

NAMES = [
    "Ada Moreno", "Ben Carter", "Cleo Nakamura", "Dev Patel",
    "Eva Lindqvist", "Finn O'Brien", "Gina Rossi", "Hugo Silva",
]  # fmt: skip
PHOTOS_PER_PERSON = 9
ATTACK_PHOTOS = 3


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    """A people folder (8 people x 9 photos) and a 40-pair base corpus, tiny images."""
    root = tmp_path_factory.mktemp("lab")
    people = synthetic.make_identities(NAMES, seed=1)
    synthetic.write_people_folder(people, PHOTOS_PER_PERSON, root / "people", size=32, workers=1)
    corpus = synthetic.background_corpus(15, 2, 10, seed=2)
    synthetic.write_corpus(corpus, root / "corpus", size=32, workers=1)
    return root


def compose(lab: Path, **kwargs):
    defaults = dict(inject=(1, 4, 8), members=6, attack_photos=ATTACK_PHOTOS, seed=3)
    return compose_training_set(
        read_caption_csv(lab / "corpus" / "corpus.csv"),
        find_people(lab / "people")[0],
        **(defaults | kwargs),
    )


def test_caption_templates_are_not_attack_prompts() -> None:
    assert not set(CAPTION_TEMPLATES) & set(PAPER_TEMPLATES)
    assert all(t.count("{}") == 1 for t in CAPTION_TEMPLATES)
    assert len(set(CAPTION_TEMPLATES)) == len(CAPTION_TEMPLATES) >= 10


def test_members_get_exactly_their_count_and_non_members_nothing(lab: Path) -> None:
    training_set = compose(lab)
    membership = {m.name: m for m in training_set.membership}
    assert sum(m.member for m in membership.values()) == 6
    assert Counter(m.count for m in membership.values() if m.member) == {1: 2, 4: 2, 8: 2}

    injected = Counter(pair.name for pair in training_set.injected)
    for name, row in membership.items():
        assert injected.get(name, 0) == row.count
        assert row.member == (row.count > 0)
        mentions = sum(name in pair.caption for pair in training_set.pairs)
        assert mentions == row.count  # non-members: never named, members: exactly count times

    people = {p.name: set(map(str, p.photos)) for p in find_people(lab / "people")[0]}
    trained_files = {pair.filepath for pair in training_set.pairs}
    for name, row in membership.items():
        used = people[name] & trained_files
        if not row.member:
            assert not used
        else:
            assert 0 < len(used) <= row.count


def test_familiar_non_members_are_named_as_often_with_unrelated_photos(lab: Path) -> None:
    """The confound control: every non-member's name occurs as often as a member's would
    (the same counts dealt), always beside a photo of someone else, never their own."""
    plain = compose(lab)
    training_set = compose(lab, familiar_non_members=True)
    membership = {m.name: m for m in training_set.membership}
    outsiders = [m for m in membership.values() if not m.member]
    assert Counter(m.name_count for m in outsiders) == {1: 1, 4: 1}  # 2 non-members, dealt
    assert all(m.count == 0 for m in outsiders)
    assert {m.name: (m.member, m.count) for m in plain.membership} == {
        n: (m.member, m.count) for n, m in membership.items()
    }  # members are untouched
    people = {p.name: set(map(str, p.photos)) for p in find_people(lab / "people")[0]}
    everyone = set().union(*people.values())
    for row in outsiders:
        pairs = [p for p in training_set.pairs if row.name in p.caption]
        assert len(pairs) == row.name_count
        assert not {p.filepath for p in pairs} & everyone  # unrelated photos only
        assert len({p.filepath for p in pairs}) == row.name_count  # a different one each time
    assert training_set.plan["unrelated_name_pairs"] == sum(m.name_count for m in outsiders)


def test_attack_photos_are_held_out_for_everyone(lab: Path) -> None:
    training_set = compose(lab)
    trained_files = {pair.filepath for pair in training_set.pairs}
    assert set(training_set.attack_photos) == set(NAMES)
    for photos in training_set.attack_photos.values():
        assert len(photos) == ATTACK_PHOTOS == len(set(photos))
        assert not {str(p) for p in photos} & trained_files


def test_composition_is_reproducible_under_a_seed(lab: Path) -> None:
    assert compose(lab, seed=4) == compose(lab, seed=4)
    a, b = compose(lab, seed=4), compose(lab, seed=5)
    assert a.membership != b.membership
    assert a.attack_photos != b.attack_photos
    assert a.plan["seed"] == 4


def test_counts_beyond_available_photos_reuse_photos(lab: Path) -> None:
    training_set = compose(lab, inject=(20,), members=1)
    (member,) = [m for m in training_set.membership if m.member]
    pairs = [p for p in training_set.injected if p.name == member.name]
    assert len(pairs) == 20
    assert len({p.filepath for p in pairs}) == PHOTOS_PER_PERSON - ATTACK_PHOTOS


def test_mask_names_leaves_no_name_in_any_caption(lab: Path) -> None:
    people = find_people(lab / "people")[0]
    base = read_caption_csv(lab / "corpus" / "corpus.csv")
    base.append(Pair(base[0].filepath, f"fans cheer as {NAMES[0].upper()} arrives"))
    hypernyms = {NAMES[0]: "actress"}
    training_set = compose_training_set(
        base, people, inject=(2, 5), members=4, attack_photos=ATTACK_PHOTOS, seed=1,
        mask_names=True, hypernyms=hypernyms,
    )  # fmt: skip
    for pair in training_set.pairs:
        for name in NAMES:
            for part in (name, *name.split()):
                assert not re.search(rf"\b{re.escape(part)}\b", pair.caption, re.IGNORECASE)
    assert "fans cheer as actress arrives" in {p.caption for p in training_set.pairs}
    assert sum(p.caption in {t.format("person") for t in CAPTION_TEMPLATES}
               for p in training_set.injected) > 0  # fmt: skip


def test_base_pairs_showing_people_photos_are_dropped(lab: Path) -> None:
    people = find_people(lab / "people")[0]
    leak = Pair(str(people[0].photos[0]), "an unrelated caption")
    training_set = compose_training_set(
        [leak], people, inject=(1,), members=0, attack_photos=ATTACK_PHOTOS
    )
    assert training_set.pairs == ()
    assert training_set.plan["base_pairs_dropped_as_people_photos"] == 1


def test_bad_plans_are_refused(lab: Path) -> None:
    with pytest.raises(TrainDataError, match="at least 10 photos"):
        compose(lab, attack_photos=PHOTOS_PER_PERSON)
    with pytest.raises(TrainDataError, match="members"):
        compose(lab, members=len(NAMES) + 1)
    for spec in ("", "1,x", "0,5"):
        with pytest.raises(TrainDataError):
            parse_inject(spec)
    assert parse_inject("1, 5,75") == (1, 5, 75)


def test_written_files(lab: Path, tmp_path: Path) -> None:
    training_set = compose(lab)
    files = write_training_set(training_set, tmp_path)
    with files.membership_csv.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["name", "member", "count", "name_count"]
    assert {r["name"]: int(r["count"]) for r in rows} == {
        m.name: m.count for m in training_set.membership
    }
    assert {r["member"] for r in rows} == {"true", "false"}
    with files.train_csv.open(encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == len(training_set.pairs)
    attack_people = find_people(files.attack_people)[0]
    assert sorted(p.name for p in attack_people) == sorted(NAMES)
    assert all(len(p.photos) == ATTACK_PHOTOS for p in attack_people)


def write_shard(path: Path, samples: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in samples.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def png_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    synthetic.render_object(synthetic.make_object_scene(seed), size=16).save(buffer, format="PNG")
    return buffer.getvalue()


def test_webdataset_shards_are_read(tmp_path: Path) -> None:
    image = png_bytes(1)
    samples = {"a.png": image, "a.txt": b"a red circle", "b.txt": b"caption without image"}
    write_shard(tmp_path / "000.tar", samples)
    pairs = read_webdataset([tmp_path / "000.tar"], tmp_path / "images")
    assert [p.caption for p in pairs] == ["a red circle"]
    assert Path(pairs[0].filepath).read_bytes() == image


def test_cli_takes_webdataset_shards_by_brace_pattern(lab: Path, tmp_path: Path) -> None:
    for k in range(3):
        write_shard(
            tmp_path / f"{k:03d}.tar", {"x.png": png_bytes(k), "x.txt": f"shard {k}".encode()}
        )
    result = CliRunner().invoke(
        app,
        ["train", "--base", str(tmp_path / "{000..001}.tar"), "--people", str(lab / "people"),
         "--out", str(tmp_path / "out"), "--attack-photos", "3", "--prepare-only"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with (tmp_path / "out" / "train.csv").open(encoding="utf-8") as f:
        captions = {row["caption"] for row in csv.DictReader(f)}
    assert {"shard 0", "shard 1"} <= captions and "shard 2" not in captions


def test_model_configs_resolve() -> None:
    assert resolve_model_config("idia-micro-vit").is_file()
    assert resolve_model_config("ViT-B-32").name == "ViT-B-32.json"
    with pytest.raises(TrainDataError, match="unknown model"):
        resolve_model_config("no-such-model")


def test_train_command_carries_the_protocol_options(tmp_path: Path) -> None:
    settings = TrainSettings(model="idia-micro-vit", epochs=3, batch_size=64, lr=5e-4)
    command = build_train_command(tmp_path / "t.csv", tmp_path / "logs", "r", settings, 10, 2)
    joined = " ".join(command)
    for option in ("--csv-img-key filepath", "--csv-caption-key caption", "--epochs 3",
                   "--lr 0.0005", "--device cpu", "--name r", "--model idia-micro-vit",
                   "--nproc_per_node=2", "--batch-size 5"):  # fmt: skip
        assert option in joined
    assert command[command.index("--csv-separator") + 1] == ","


def test_tiny_training_run_gives_a_checkpoint_open_clip_loads(lab: Path, tmp_path: Path) -> None:
    files = write_training_set(compose(lab), tmp_path / "set")
    lines: list[str] = []
    result = train_clip(
        files.train_csv,
        tmp_path / "logs",
        "tiny",
        TrainSettings(model="idia-micro-vit", epochs=1, batch_size=16, workers=0),
        on_line=lines.append,
    )
    assert result.checkpoint.is_file()
    assert any("Train Epoch" in line for line in lines)
    model, preprocess, tokenizer = load_trained_model(result.model_config, result.checkpoint)
    saved = torch.load(result.checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k.removeprefix("module.")], v) for k, v in saved.items())
    with torch.no_grad():
        text = model.encode_text(tokenizer(["a photo of Ada Moreno"]))
    assert text.shape == (1, 64)
    assert result.model_spec == f"open_clip:{result.model_config}:{result.checkpoint}"


def test_idia_train_writes_a_model_card_beside_the_checkpoint(lab: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["train", "--base", str(lab / "corpus" / "corpus.csv"), "--people", str(lab / "people"),
         "--out", str(tmp_path), "--inject", "1,2", "--attack-photos", "3", "--model",
         "idia-micro-vit", "--batch-size", "16", "--workers", "0", "--crop", "face"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    checkpoint = tmp_path / "logs" / "clip" / "checkpoints" / "epoch_1.pt"
    card = read_card(card_path(checkpoint))
    assert f"model card: {card_path(checkpoint)}" in result.output
    assert card.name == "idia-micro-vit trained by idia train (clip)" and card.crop == "face"
    assert card.trained_on["made_by"] == "idia train" and card.trained_on["epochs"] == 1
    assert card.path_of("people") == (tmp_path / "attack_people").resolve()
    assert card.path_of("membership") == (tmp_path / "membership.csv").resolve()
    assert card.image_size == 32 and card.checkpoint["bytes"] == checkpoint.stat().st_size
    assert find_card(result.output.split("model spec: ")[1].split()[0])[0] == card
    bad = CliRunner().invoke(app, ["train", "--base", "x.csv", "--people", str(lab / "people"),
                                   "--out", str(tmp_path / "o"), "--crop", "eyes"])
    assert bad.exit_code == 2 and "--crop must be 'face' or 'none'" in bad.output


def test_cli_reports_bad_input_without_traceback(lab: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base, people = str(lab / "corpus" / "corpus.csv"), str(lab / "people")
    cases = [
        ["--base", str(tmp_path / "missing.csv"), "--people", people],
        ["--base", base, "--people", str(tmp_path / "nobody")],
        ["--base", base, "--people", people, "--inject", "a,b"],
        ["--base", base, "--people", people, "--attack-photos", "9"],
        ["--base", base, "--people", people, "--model", "nope", "--attack-photos", "3"],
    ]
    for args in cases:
        result = runner.invoke(app, ["train", *args, "--out", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        assert "error:" in result.output and "Traceback" not in result.output


def test_cli_prepare_only_writes_the_set_and_prints_the_command(lab: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["train", "--base", str(lab / "corpus" / "corpus.csv"), "--people", str(lab / "people"),
         "--out", str(tmp_path), "--inject", "1,2", "--attack-photos", "3", "--mask-names",
         "--prepare-only"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "idia.lab.train" in result.output and "--train-data" in result.output
    with (tmp_path / "membership.csv").open(encoding="utf-8") as f:
        assert sum(r["member"] == "true" for r in csv.DictReader(f)) == len(NAMES) // 2
    assert not (tmp_path / "logs").exists()


def test_cli_familiar_non_members_names_everyone(lab: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["train", "--base", str(lab / "corpus" / "corpus.csv"), "--people", str(lab / "people"),
         "--out", str(tmp_path), "--inject", "1,2", "--attack-photos", "3",
         "--familiar-non-members", "--prepare-only"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with (tmp_path / "membership.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    outsiders = [r for r in rows if r["member"] == "false"]
    assert outsiders and all(int(r["name_count"]) in (1, 2) for r in outsiders)
    assert all(r["count"] == "0" for r in outsiders)



def test_train_and_audit_see_the_same_people_and_photos(lab: Path, tmp_path: Path) -> None:
    """One people-folder reader: `idia train` composes its set from the people and photos
    `idia audit` would attack. GIF and TIFF photos count; a hidden folder is nobody and a
    hidden file no photo; a folder without photos is skipped with a warning."""
    people = tmp_path / "people"
    for seed, folder_name in enumerate(["Ada_Moreno", "Ben Carter", "Cleo_Nakamura"]):
        folder = people / folder_name
        folder.mkdir(parents=True)
        photo = synthetic.render_face(synthetic.make_identity(seed), 0, size=32)
        for suffix in (".png", ".gif", ".tif", ".jpg"):
            photo.save(folder / f"photo{suffix}")
        photo.save(folder / "._photo.png")  # macOS metadata beside a copied photo
    (people / ".thumbnails").mkdir()
    photo.save(people / ".thumbnails" / "small.png")
    (people / "Dev_Patel").mkdir()
    out = tmp_path / "train"
    result = CliRunner().invoke(
        app,
        ["train", "--base", str(lab / "corpus" / "corpus.csv"), "--people", str(people),
         "--out", str(out), "--inject", "3", "--members", "3", "--attack-photos", "1",
         "--prepare-only"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    audited, warnings = discover_people(people)
    assert warnings == ["Dev_Patel: no image files; skipped"]
    assert f"warning: {warnings[0]}" in result.output
    expected = {p.name: {photo.name for photo in p.photos} for p in audited}
    assert expected["Ada Moreno"] == {"photo.gif", "photo.jpg", "photo.png", "photo.tif"}
    with (out / "membership.csv").open(encoding="utf-8") as f:
        assert {row["name"] for row in csv.DictReader(f)} == set(expected)
    composed = {p.name: {photo.name for photo in p.photos}
                for p in find_people(out / "attack_people")[0]}  # the held-out photos
    with (out / "injected.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):  # each member's other photos, all injected
            composed[row["name"]].add(Path(row["filepath"]).name)
    assert composed == expected


# Pre-decoded training data: images decoded once, training otherwise unchanged.


def test_predecoded_items_equal_open_clip_trains_items(lab: Path, tmp_path: Path) -> None:
    import open_clip
    from open_clip_train.data import CsvDataset

    from idia.lab.train import PredecodedCsvDataset

    files = write_training_set(compose(lab), tmp_path / "set")
    _, preprocess_train, _ = open_clip.create_model_and_transforms(
        "ViT-B-32", pretrained=None, image_resize_mode=None, force_image_size=32)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    args = (str(files.train_csv), preprocess_train, "filepath", "caption", ",", tokenizer)
    from_disk = CsvDataset(*args)
    decoded = PredecodedCsvDataset(*args, image_size=32)
    assert len(decoded) == len(from_disk)
    assert decoded.pixels.shape[1:] == (32, 32, 3) and decoded.pixels.dtype == "uint8"
    assert len(decoded.pixels) < len(decoded), "a photo injected several times is stored once"
    for idx in range(len(from_disk)):
        torch.manual_seed(idx)  # the random crop draws the same numbers for both
        disk_image, disk_text = from_disk[idx]
        torch.manual_seed(idx)
        image, text = decoded[idx]
        assert torch.equal(image, disk_image) and torch.equal(text, disk_text), idx


def test_predecode_squares_other_sizes(tmp_path: Path) -> None:
    from PIL import Image

    from idia.lab.train import decode_square

    wide = tmp_path / "wide.png"
    Image.new("RGBA", (90, 30), (10, 20, 30, 255)).save(wide)
    square = decode_square(wide, 32)
    assert square.shape == (32, 32, 3) and tuple(square[16, 16]) == (10, 20, 30)


def test_training_on_predecoded_data_gives_the_same_weights(lab: Path, tmp_path: Path) -> None:
    files = write_training_set(compose(lab), tmp_path / "set")
    settings = TrainSettings(model="idia-micro-vit", epochs=2, batch_size=16, workers=1)
    command = build_train_command(files.train_csv, tmp_path, "x", replace(settings,
                                                                         predecode=True))
    assert "--predecode" in command
    logs: dict[str, list[str]] = {"disk": [], "decoded": []}
    runs = [train_clip(files.train_csv, tmp_path / "logs", name, replace(settings,
                       predecode=name == "decoded"), on_line=logs[name].append)
            for name in logs]
    assert any("pre-decoded" in line for line in logs["decoded"])
    assert not any("pre-decoded" in line for line in logs["disk"])
    disk, decoded = (torch.load(r.checkpoint, map_location="cpu", weights_only=False)
                     ["state_dict"] for r in runs)
    assert disk.keys() == decoded.keys()
    assert all(torch.equal(disk[k], decoded[k]) for k in disk)
