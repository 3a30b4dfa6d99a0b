"""LFW as the public reference: found in scikit-learn's layout, read as people without
decoding a photo or writing into the copy, fetched through scikit-learn only when absent, and
a clear way out when there is no network."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import pytest
from PIL import Image

from idia import lfw
from idia.lfw import DOWNLOAD_URL, LFWError, is_lfw_spec, lfw_folder, load_lfw
from idia.people import Person

PEOPLE = {"Ana_Maria_Lopez": 3, "Bob_Smith": 1, "Zhang_Wei": 2}


def make_lfw(root: Path, people: dict[str, int] = PEOPLE) -> Path:
    """A tiny LFW copy in scikit-learn's layout (generated images, not faces)."""
    for i, (folder, n) in enumerate(people.items()):
        person = root / "lfw_home" / "lfw_funneled" / folder
        person.mkdir(parents=True)
        for k in reversed(range(1, n + 1)):  # written out of order: the reader sorts
            Image.new("RGB", (25, 25), (10 * i, 20 * k, 0)).save(person / f"{folder}_{k:04d}.jpg")
    (root / "lfw_home" / "pairs.txt").write_text("1\t0\n")  # a file beside the folders
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def no_fetch(monkeypatch):
    import sklearn.datasets

    def refuse(**kwargs):
        raise AssertionError("scikit-learn was asked to fetch LFW")

    monkeypatch.setattr(sklearn.datasets, "fetch_lfw_people", refuse)


def test_lfw_dir_reads_people_with_spaced_names_and_sorted_photos(tmp_path, no_fetch) -> None:
    root = make_lfw(tmp_path / "copy")
    before = snapshot(root)
    reference = load_lfw(f"lfw:{root}")
    assert [p.name for p in reference.people] == ["Ana Maria Lopez", "Bob Smith", "Zhang Wei"]
    assert all(isinstance(p, Person) for p in reference.people)
    ana = reference.people[0]
    assert [p.name for p in ana.photos] == [f"Ana_Maria_Lopez_{k:04d}.jpg" for k in (1, 2, 3)]
    assert reference.n_photos == 6 and "3 people, 6 photos" in reference.describe()
    assert snapshot(root) == before  # read-only: nothing written, nothing touched


def test_lfw_home_itself_names_the_same_set(tmp_path, no_fetch) -> None:
    root = make_lfw(tmp_path / "copy")
    assert load_lfw(f"lfw:{root / 'lfw_home'}").key == load_lfw(f"lfw:{root}").key


def test_photos_are_not_decoded_up_front(tmp_path, no_fetch) -> None:
    root = make_lfw(tmp_path / "copy")
    (root / "lfw_home" / "lfw_funneled" / "Bob_Smith" / "Bob_Smith_0001.jpg").write_bytes(b"x")
    assert len(load_lfw(f"lfw:{root}").people) == 3


def test_the_key_is_the_file_list_and_sizes_wherever_the_copy_lies(tmp_path, no_fetch) -> None:
    first = load_lfw(f"lfw:{make_lfw(tmp_path / 'one')}").key
    second = make_lfw(tmp_path / "two")
    assert load_lfw(f"lfw:{second}").key == first
    photo = second / "lfw_home" / "lfw_funneled" / "Zhang_Wei" / "Zhang_Wei_0002.jpg"
    photo.write_bytes(photo.read_bytes() + b"\0")
    assert load_lfw(f"lfw:{second}").key != first


def test_a_folder_not_in_scikit_learns_layout_says_what_is_expected(tmp_path) -> None:
    with pytest.raises(LFWError, match="lfw_home/lfw_funneled/<Name>/<Name>_0001.jpg"):
        lfw_folder(f"lfw:{tmp_path}")
    with pytest.raises(LFWError, match="'lfw' or 'lfw:DIR'"):
        lfw_folder("lfw:")


def test_is_lfw_spec() -> None:
    assert is_lfw_spec("lfw") and is_lfw_spec("lfw:/data")
    assert not is_lfw_spec("lfw_people") and not is_lfw_spec("./lfw")


def test_plain_lfw_uses_scikit_learns_data_home_when_it_holds_the_set(
    tmp_path, monkeypatch, no_fetch
) -> None:
    make_lfw(tmp_path / "data")
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "data"))
    assert len(load_lfw("lfw").people) == 3


def test_plain_lfw_without_network_fails_with_the_offline_way(tmp_path, monkeypatch) -> None:
    import sklearn.datasets

    calls = []

    def offline(**kwargs):
        calls.append(kwargs)
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(sklearn.datasets, "fetch_lfw_people", offline)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "empty"))
    with pytest.raises(LFWError) as raised:
        load_lfw("lfw")
    message = str(raised.value)
    assert "lfw:DIR" in message and DOWNLOAD_URL in message and "name resolution" in message
    assert calls and calls[0]["download_if_missing"] and calls[0]["funneled"]
    with pytest.raises(LFWError, match="lfw:DIR"):
        load_lfw("lfw", fetch=False)


def test_fetching_asks_scikit_learn_to_download_but_decode_nothing(tmp_path, monkeypatch) -> None:
    import sklearn.datasets

    def fetch(*, data_home, min_faces_per_person, **kwargs):
        make_lfw(Path(data_home))  # what scikit-learn's download and extraction leave
        raise ValueError(f"min_faces_per_person={min_faces_per_person} is too restrictive")

    monkeypatch.setattr(sklearn.datasets, "fetch_lfw_people", fetch)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "home"))
    assert lfw.lfw_folder("lfw") == tmp_path / "home" / "lfw_home" / "lfw_funneled"
    assert os.path.isdir(tmp_path / "home" / "lfw_home" / "lfw_funneled" / "Bob_Smith")


@pytest.mark.shared_data
def test_the_small_real_copy_reads_as_people(lfw_small, no_fetch) -> None:
    before = snapshot(lfw_small)
    reference = load_lfw(f"lfw:{lfw_small}")
    assert len(reference.people) == 15 and reference.n_photos == 38
    assert reference.people[0].name == "AJ Cook"
    assert snapshot(lfw_small) == before
