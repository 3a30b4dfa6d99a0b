"""Synthetic people: seeded, stable identities, varied photos, truthful captions."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image

from idia import synthetic
from idia.people import find_people

NAMES = ["Ada Moreno", "Ben Carter", "Cleo Nakamura", "Dev Patel"]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_identities_are_reproducible_and_distinct() -> None:
    first = synthetic.make_identities(NAMES, seed=5)
    again = synthetic.make_identities(NAMES, seed=5)
    other = synthetic.make_identities(NAMES, seed=6)
    assert first == again
    assert [p.name for p in first] == NAMES
    assert first[0].traits != other[0].traits
    assert len({p.seed for p in first}) == len(NAMES)


def test_genders_are_respected_and_checked() -> None:
    people = synthetic.make_identities(NAMES, seed=1, genders=["woman", "man", "woman", "man"])
    assert [p.traits.gender for p in people] == ["woman", "man", "woman", "man"]
    assert all(p.traits.beard == "none" for p in people if p.traits.gender == "woman")
    with pytest.raises(ValueError, match="genders"):
        synthetic.make_identities(NAMES, seed=1, genders=["woman"])


def test_photos_are_deterministic_and_vary_between_photos() -> None:
    person = synthetic.make_identity(11, "Ada Moreno")
    a = synthetic.render_face(person, 0, size=48)
    assert a.size == (48, 48) and a.mode == "RGB"
    assert np.array_equal(pixels(a), pixels(synthetic.render_face(person, 0, size=48)))
    photos = [pixels(synthetic.render_face(person, k, size=48)) for k in range(6)]
    differences = [np.abs(photos[0] - p).mean() for p in photos[1:]]
    assert min(differences) > 3  # nuisance changes every photo noticeably


def test_photos_of_one_person_look_alike_more_than_photos_of_others() -> None:
    """Without nuisance, a person's photos agree; different people do not."""
    people = synthetic.make_identities([f"P{i}" for i in range(6)], seed=2)

    def face(identity: synthetic.Identity, k: int) -> np.ndarray:
        return pixels(synthetic.render_face(identity, k, size=48, strength=0.0))[8:40, 12:36]

    same = np.mean([np.abs(face(p, 0) - face(p, 1)).mean() for p in people])
    different = np.mean(
        [np.abs(face(people[i], 0) - face(people[i + 1], 0)).mean() for i in range(5)]
    )
    assert same < different


def test_lookalike_closeness_controls_similarity() -> None:
    person = synthetic.make_identity(3, "Ada Moreno", "woman")
    twin = synthetic.lookalike(person, seed=9, closeness=1.0)
    stranger = synthetic.lookalike(person, seed=9, closeness=0.0)
    assert asdict(twin.traits) == asdict(person.traits)
    assert stranger.traits.gender == "woman"
    assert stranger.traits.face_width != person.traits.face_width
    assert synthetic.lookalike(person, seed=9, closeness=0.5) == synthetic.lookalike(person, 9, 0.5)


def test_captions_describe_only_what_the_person_has() -> None:
    people = synthetic.make_identities([None] * 60, seed=4)
    for person in people:
        for k in range(4):
            caption = synthetic.describe_photo(person, k)
            conditions = synthetic.photo_conditions(person, k)
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
    named = synthetic.make_identities(NAMES, seed=1)
    corpus = synthetic.background_corpus(
        10, 2, 5, seed=3, lookalike_of=named, lookalikes_per_person=1
    )
    assert len(corpus) == (10 + len(NAMES)) * 2 + 5
    assert corpus == synthetic.background_corpus(
        10, 2, 5, seed=3, lookalike_of=named, lookalikes_per_person=1
    )
    assert sum(r.scene is not None for r in corpus) == 5
    assert all(r.identity is None or r.identity.name is None for r in corpus)
    assert not any(name.split()[0] in r.caption for r in corpus for name in NAMES)


def test_objects_render_and_are_described() -> None:
    scene = synthetic.make_object_scene(7)
    image = synthetic.render_object(scene, size=40)
    assert image.size == (40, 40)
    caption = synthetic.describe_object(scene)
    assert scene.shape in caption and scene.colour_name in caption


def test_written_people_folder_and_corpus(tmp_path) -> None:
    people = synthetic.make_identities(NAMES, seed=8)
    folder = synthetic.write_people_folder(people, 3, tmp_path / "people", size=32, workers=1)
    read = find_people(folder)[0]
    assert [p.name for p in read] == sorted(NAMES)
    assert all(len(p.photos) == 3 for p in read)
    assert Image.open(read[0].photos[0]).size == (32, 32)

    records = synthetic.background_corpus(3, 2, 2, seed=1)
    csv_path = synthetic.write_corpus(records, tmp_path / "corpus", size=32, workers=1)
    with csv_path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["caption"] for r in rows] == [r.caption for r in records]
    assert all(Image.open(r["filepath"]).size == (32, 32) for r in rows)


def test_people_folder_needs_names(tmp_path) -> None:
    with pytest.raises(ValueError, match="names"):
        synthetic.write_people_folder(synthetic.make_identities([None], 1), 1, tmp_path)


def test_named_people_have_names_of_their_own_sex(tmp_path) -> None:
    """Names drawn exactly as decoys are (sample_decoys), each face of its name's sex."""
    from idia.names import NamePool, default_pool, sample_decoys

    pool = default_pool()
    people = synthetic.named_people(41, name_seed=7, face_seed=3)
    assert [p.name for p in people] == sample_decoys(41, pool, seed=7)
    sexes = [synthetic.SEX_OF_GENDER[p.traits.gender] for p in people]
    assert sexes.count("f") == 21 and sexes.count("m") == 20
    assert all(p.name.split()[0] in pool.first_names[s] for p, s in zip(people, sexes, strict=True))
    # with no name shared between the sexes, a mismatch cannot hide behind a unisex name
    disjoint = NamePool({"f": ("Ann", "Eve", "Ida"), "m": ("Bob", "Tom", "Ulf")},
                        ("Lee", "Roe", "Fox"), "tiny")
    tiny = synthetic.named_people(6, name_seed=1, face_seed=1, pool=disjoint)
    for person in tiny:
        first = person.name.split()[0]
        assert person.traits.gender == ("woman" if first in ("Ann", "Eve", "Ida") else "man")
    table = synthetic.write_people_table(tiny, tmp_path / "people.csv")
    with table.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["name"], r["sex"]) for r in rows] == [
        (p.name, synthetic.SEX_OF_GENDER[p.traits.gender]) for p in tiny]


def digest(images: Iterable[Image.Image]) -> str:
    hashed = hashlib.sha256()
    for image in images:
        hashed.update(f"{image.mode}{image.size}".encode())
        hashed.update(image.tobytes())
    return hashed.hexdigest()[:16]


def test_rendering_is_pixel_identical_to_the_lab_figures() -> None:
    """The lab's measured figures were made with these pixels: the digests were computed with
    idia.synthetic before it became this package, and no change may alter a pixel. The
    photos cover every part a face can have (each hair style, beard, glasses, hat, a hand,
    sunglasses, an open mouth, closed eyes, freckles, a mole, age lines, every background)."""
    people = synthetic.make_identities([None] * 80, seed=0)
    shown = set()
    for person in people:
        tr = person.traits
        shown |= {tr.hair_style, tr.beard, tr.glasses, ("freckles", tr.freckles > 0),
                  ("mole", tr.mole is not None), ("lines", tr.age > 50)}
        for k in range(2):
            cond = synthetic.photo_conditions(person, k)
            shown |= {cond.hat, cond.background, ("sunglasses", cond.sunglasses),
                      ("hand", cond.hand), ("open", cond.mouth_open),
                      ("closed", cond.eyes_closed), ("grey", cond.grayscale)}
    every_part = {*synthetic.HAIR_STYLES, *synthetic.BEARDS, *synthetic.GLASSES, "cap", "beanie",
                  "brimmed hat", "plain", "gradient", "wall", "bokeh", "stripes"}
    every_part |= {(part, True) for part in ("freckles", "mole", "lines", "sunglasses", "hand",
                                             "open", "closed", "grey")}
    assert every_part <= shown
    assert digest(synthetic.render_face(p, k, 64) for p in people for k in range(2)) == (
        "5af9658349fe8e2d"
    )
    sizes = [(32, 1.0), (48, 0.0), (112, 1.0), (224, 0.5)]
    assert digest(synthetic.render_face(people[i], 5, size, strength)
                  for i, (size, strength) in enumerate(sizes)) == "26ba417f99b5c81f"
    scenes = [synthetic.make_object_scene(i) for i in range(30)]
    assert {scene.shape for scene in scenes} == set(synthetic.SHAPES)
    assert digest(synthetic.render_object(scene, 64) for scene in scenes) == "cedc5fdd325fe77f"
    named = synthetic.make_identities(["Ada Moreno", "Bo Li"], seed=1)
    corpus = synthetic.background_corpus(
        6, 2, 4, seed=3, lookalike_of=named, lookalikes_per_person=1
    )
    assert digest(synthetic.render_record(r, 48) for r in corpus) == "4cabc45eb7209769"
    twins = [synthetic.lookalike(named[0], seed=9, closeness=c) for c in (0.0, 0.5, 1.0)]
    assert digest(synthetic.render_face(p, 0, 64) for p in twins) == "84c6337318b4953b"
    captions = [synthetic.describe_photo(p, k) for p in people for k in range(2)]
    captions += [synthetic.describe_object(s) for s in scenes] + [r.caption for r in corpus]
    assert hashlib.sha256("\n".join(captions).encode()).hexdigest()[:16] == "362ad6ba7fad7243"
