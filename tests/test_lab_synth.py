"""Synthetic people: seeded, stable identities, varied photos, truthful captions."""

from __future__ import annotations

import csv
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image

from idia.lab import synth
from idia.lab.train import read_people_folder

NAMES = ["Ada Moreno", "Ben Carter", "Cleo Nakamura", "Dev Patel"]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_identities_are_reproducible_and_distinct() -> None:
    first = synth.make_identities(NAMES, seed=5)
    again = synth.make_identities(NAMES, seed=5)
    other = synth.make_identities(NAMES, seed=6)
    assert first == again
    assert [p.name for p in first] == NAMES
    assert first[0].traits != other[0].traits
    assert len({p.seed for p in first}) == len(NAMES)


def test_genders_are_respected_and_checked() -> None:
    people = synth.make_identities(NAMES, seed=1, genders=["woman", "man", "woman", "man"])
    assert [p.traits.gender for p in people] == ["woman", "man", "woman", "man"]
    assert all(p.traits.beard == "none" for p in people if p.traits.gender == "woman")
    with pytest.raises(ValueError, match="genders"):
        synth.make_identities(NAMES, seed=1, genders=["woman"])


def test_photos_are_deterministic_and_vary_between_photos() -> None:
    person = synth.make_identity(11, "Ada Moreno")
    a = synth.render_face(person, 0, size=48)
    assert a.size == (48, 48) and a.mode == "RGB"
    assert np.array_equal(pixels(a), pixels(synth.render_face(person, 0, size=48)))
    photos = [pixels(synth.render_face(person, k, size=48)) for k in range(6)]
    differences = [np.abs(photos[0] - p).mean() for p in photos[1:]]
    assert min(differences) > 3  # nuisance changes every photo noticeably


def test_photos_of_one_person_look_alike_more_than_photos_of_others() -> None:
    """Without nuisance, a person's photos agree; different people do not."""
    people = synth.make_identities([f"P{i}" for i in range(6)], seed=2)

    def face(identity: synth.Identity, k: int) -> np.ndarray:
        return pixels(synth.render_face(identity, k, size=48, strength=0.0))[8:40, 12:36]

    same = np.mean([np.abs(face(p, 0) - face(p, 1)).mean() for p in people])
    different = np.mean(
        [np.abs(face(people[i], 0) - face(people[i + 1], 0)).mean() for i in range(5)]
    )
    assert same < different


def test_lookalike_closeness_controls_similarity() -> None:
    person = synth.make_identity(3, "Ada Moreno", "woman")
    twin = synth.lookalike(person, seed=9, closeness=1.0)
    stranger = synth.lookalike(person, seed=9, closeness=0.0)
    assert asdict(twin.traits) == asdict(person.traits)
    assert stranger.traits.gender == "woman"
    assert stranger.traits.face_width != person.traits.face_width
    assert synth.lookalike(person, seed=9, closeness=0.5) == synth.lookalike(person, 9, 0.5)


def test_captions_describe_only_what_the_person_has() -> None:
    people = synth.make_identities([None] * 60, seed=4)
    for person in people:
        for k in range(4):
            caption = synth.describe_photo(person, k)
            conditions = synth.photo_conditions(person, k)
            words = caption.replace(",", " ").split()
            assert person.traits.gender in words
            if person.traits.glasses == "none":
                assert "glasses" not in words
            if person.traits.beard == "none":
                assert "bearded" not in words and "moustache" not in words
            if conditions.hat == "none":
                assert not any(h in caption for h in ("a cap", "a beanie", "brimmed hat"))
            assert person.traits.hair_colour_name + " hair" in caption or "hair" not in words


def test_background_corpus_counts_and_reproducibility() -> None:
    named = synth.make_identities(NAMES, seed=1)
    corpus = synth.background_corpus(10, 2, 5, seed=3, lookalike_of=named, lookalikes_per_person=1)
    assert len(corpus) == (10 + len(NAMES)) * 2 + 5
    assert corpus == synth.background_corpus(
        10, 2, 5, seed=3, lookalike_of=named, lookalikes_per_person=1
    )
    assert sum(r.scene is not None for r in corpus) == 5
    assert all(r.identity is None or r.identity.name is None for r in corpus)
    assert not any(name.split()[0] in r.caption for r in corpus for name in NAMES)


def test_objects_render_and_are_described() -> None:
    scene = synth.make_object_scene(7)
    image = synth.render_object(scene, size=40)
    assert image.size == (40, 40)
    caption = synth.describe_object(scene)
    assert scene.shape in caption and scene.colour_name in caption


def test_written_people_folder_and_corpus(tmp_path) -> None:
    people = synth.make_identities(NAMES, seed=8)
    folder = synth.write_people_folder(people, 3, tmp_path / "people", size=32, workers=1)
    read = read_people_folder(folder)
    assert [p.name for p in read] == sorted(NAMES)
    assert all(len(p.photos) == 3 for p in read)
    assert Image.open(read[0].photos[0]).size == (32, 32)

    records = synth.background_corpus(3, 2, 2, seed=1)
    csv_path = synth.write_corpus(records, tmp_path / "corpus", size=32, workers=1)
    with csv_path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["caption"] for r in rows] == [r.caption for r in records]
    assert all(Image.open(r["filepath"]).size == (32, 32) for r in rows)


def test_people_folder_needs_names(tmp_path) -> None:
    with pytest.raises(ValueError, match="names"):
        synth.write_people_folder(synth.make_identities([None], 1), 1, tmp_path)


def test_named_people_have_names_of_their_own_sex(tmp_path) -> None:
    """Names drawn exactly as decoys are (sample_decoys), each face of its name's sex."""
    from idia.names import NamePool, default_pool, sample_decoys

    pool = default_pool()
    people = synth.named_people(41, name_seed=7, face_seed=3)
    assert [p.name for p in people] == sample_decoys(41, pool, seed=7)
    sexes = [synth.SEX_OF_GENDER[p.traits.gender] for p in people]
    assert sexes.count("f") == 21 and sexes.count("m") == 20
    assert all(p.name.split()[0] in pool.first_names[s] for p, s in zip(people, sexes, strict=True))
    # with no name shared between the sexes, a mismatch cannot hide behind a unisex name
    disjoint = NamePool({"f": ("Ann", "Eve", "Ida"), "m": ("Bob", "Tom", "Ulf")},
                        ("Lee", "Roe", "Fox"), "tiny")
    tiny = synth.named_people(6, name_seed=1, face_seed=1, pool=disjoint)
    for person in tiny:
        first = person.name.split()[0]
        assert person.traits.gender == ("woman" if first in ("Ann", "Eve", "Ida") else "man")
    table = synth.write_people_table(tiny, tmp_path / "people.csv")
    with table.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["name"], r["sex"]) for r in rows] == [
        (p.name, synth.SEX_OF_GENDER[p.traits.gender]) for p in tiny]
