"""Shared fixtures: tiny real models saved as real checkpoints, a model that "knows" chosen
people by construction, one quick lab for the whole test session, and the path to
../shared/data (tests skip when it is absent)."""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


def _share_the_cores() -> None:
    """Each pytest-xdist worker gets its share of the cores for its math libraries' threads
    (before numpy or torch is loaded). Two workers on 2 cores, each with torch's default 2
    threads, ran the quick lab beside a busy process in 112 s instead of 52 s with 1 thread.
    A thread count already set in the environment is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count() or 1)  # macOS has no affinity call
        threads = str(max(1, cores // workers))
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(variable, threads)


_share_the_cores()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TINY_OPEN_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


# The session's shared labs and models held up to 1.6 GiB of the temporary folder at once in a
# clean-clone run (tests' own folders go as they pass: tmp_path_retention_policy, pyproject.toml).
MIN_FREE_TMP_BYTES = 3 * 2**30


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, in one line, when the temporary folder cannot hold the session: a full
    disk otherwise surfaces as hundreds of setup errors far from their cause."""
    folder = tempfile.gettempdir()
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_TMP_BYTES:
        pytest.exit(f"only {free / 2**30:.1f} GiB free in {folder}; the test "
                    f"session needs {MIN_FREE_TMP_BYTES / 2**30:.0f} GiB: free some space or "
                    "point $TMPDIR at a larger disk", returncode=3)


LAB_GROUP = "quick_lab"
SHARED_GROUPS = {  # a costly session fixture -> the group of the tests that use it
    "quick_lab": LAB_GROUP, "defended_lab": LAB_GROUP,  # the quick lab and what is built on it
    "familiarity_lab": "familiarity_lab",
}


def _work_unit(item: pytest.Item) -> str | None:
    """The group of tests that one pytest-xdist worker runs together (``--dist loadgroup``),
    so that a costly shared fixture is built once in a parallel run too: the tests of a costly
    session fixture (SHARED_GROUPS) form one group; a test whose module builds a fixture for
    more than one test (module or session scope) runs with the rest of its module. None: any
    worker."""
    for name in item.fixturenames:
        if name in SHARED_GROUPS:
            return SHARED_GROUPS[name]
    module = item.getparent(pytest.Module).nodeid
    definitions = item._fixtureinfo.name2fixturedefs
    for name in item.fixturenames:
        for fixture in definitions.get(name, ()):
            if fixture.scope != "function" and fixture.baseid == module:
                return module
    return None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist (see ``_work_unit``); in a parallel run the quick lab's group
    comes first, since it is the longest single chain of work."""
    for item in items:
        group = _work_unit(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the same order in each
        items.sort(key=lambda item: _work_unit(item) != LAB_GROUP)
@pytest.fixture(autouse=True)
def no_lfw_download(monkeypatch, tmp_path_factory) -> None:
    """No test downloads LFW (230 MB): scikit-learn's data home is an empty folder and its
    fetch fails at once as it does offline, so the default public reference of ``idia check``
    is unavailable unless a test gives ``lfw:DIR`` (or patches the fetch itself)."""

    def offline(**_) -> None:
        raise OSError("tests do not download LFW")

    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path_factory.getbasetemp() / "no-lfw"))
    monkeypatch.setattr("sklearn.datasets.fetch_lfw_people", offline)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (reference data lives outside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def origin_table_dir(tmp_path_factory) -> Path:
    """The folder of the session's origin table (idia.origins: public reference data, extracted
    from names-dataset on first use, about 40 s), shared by the pytest-xdist workers of one run:
    the first to need it extracts it, the others wait (idia.origins locks the folder)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder = root / "origin-table"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session", autouse=True)
def _origin_table_of_the_session(origin_table_dir) -> Iterator[None]:
    """Every attack of the session reads the origin table from the session's folder (extracted
    there once, when an attack first needs it), never from a user's cache folder."""
    from idia import name_null, origins

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(name_null, "load_origin_table",
                      lambda: origins.load_origin_table(origin_table_dir))
        yield


@pytest.fixture(scope="session")
def origin_table(origin_table_dir):
    from idia.origins import load_origin_table

    return load_origin_table(origin_table_dir)


@pytest.fixture(scope="session")
def origin_cache(origin_table_dir, origin_table) -> Path:
    """A cache folder holding the origin table, for code that takes a cache folder."""
    return origin_table_dir


@pytest.fixture(scope="session")
def tiny_open_clip(tmp_path_factory) -> tuple[Path, Path]:
    """(config JSON, checkpoint) of a random tiny open_clip model, saved as open_clip_train
    does under DDP: the state dict under 'state_dict', keys prefixed with 'module.'."""
    import open_clip
    import torch

    root = tmp_path_factory.mktemp("tiny_open_clip")
    config = root / "tiny-test-clip.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-test-clip")
    checkpoint = root / "epoch_1.pt"
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 1, "name": "tiny", "state_dict": state}, checkpoint)
    return config, checkpoint


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time, once the embedding
    caches that reference cycles still hold open are closed (closing one folds its SQLite
    write-ahead log into the database file)."""
    gc.collect()
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _copy_lab(lab: Path, to: Path) -> Path:
    """A copy of a lab folder. Its files still name the original's model and photos by
    absolute path; those are only read."""
    return Path(shutil.copytree(lab, to, symlinks=True))


@pytest.fixture(scope="session")
def quick_lab(tmp_path_factory) -> Iterator[Path]:
    """`idia lab --preset quick`, built once per test session (the suite's slowest set-up) and
    shared by every test that reads a finished lab. Read only: a test that writes into a lab
    works on ``lab_copy(quick_lab)``; at the end of the session the fixture fails if a file
    in the lab was added, changed or removed."""
    from typer.testing import CliRunner

    from idia.cli import app

    out = tmp_path_factory.mktemp("quick_lab") / "quick"
    result = CliRunner().invoke(app, ["lab", "--preset", "quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    before = _snapshot(out)
    yield out
    assert _snapshot(out) == before, "a test wrote into the shared quick lab; copy it first"


@pytest.fixture(scope="session")
def defended_lab(quick_lab, tmp_path_factory) -> Iterator[Path]:
    """`idia lab --preset quick --defence unlearn`, its lab stage taken from ``quick_lab``:
    the command runs as a user would run it, with ``run_lab`` copying the session's lab
    instead of training a second one. Read only, like ``quick_lab``."""
    from typer.testing import CliRunner

    from idia.cli import app
    from idia.lab import pipeline

    copied = []

    def reuse_quick_lab(out: Path, preset: str, seed: int, **_) -> dict:
        assert (preset, seed) == ("quick", 0), (preset, seed)
        copied.append(_copy_lab(quick_lab, Path(out)))
        return json.loads((Path(out) / "summary.json").read_text())

    out = tmp_path_factory.mktemp("defended_lab") / "quick"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "run_lab", reuse_quick_lab)
        result = CliRunner().invoke(app, ["lab", "--preset", "quick", "--out", str(out),
                                          "--defence", "unlearn"])
    assert result.exit_code == 0, result.output
    assert copied == [out], "the lab command no longer calls idia.lab.pipeline.run_lab"
    before = _snapshot(out)
    yield out
    assert _snapshot(out) == before, "a test wrote into the shared defended lab; copy it first"


@pytest.fixture
def lab_copy(tmp_path) -> Callable[[Path], Path]:
    """Copies a shared lab into this test's tmp_path, for a test that writes into it."""
    return lambda lab: _copy_lab(lab, tmp_path / "lab_copy" / lab.name)


@functools.lru_cache(maxsize=500_000)
def _unit(seed_text: str, dim: int) -> np.ndarray:
    """A random unit vector per text (read-only: cached, as the models below ask for the same
    prompts and name parts again and again)."""
    seed = int.from_bytes(hashlib.blake2b(seed_text.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).normal(size=dim)
    v /= np.linalg.norm(v)
    v.setflags(write=False)
    return v


class KnowingModel:
    """An EmbeddingModel that knows chosen people, by construction.

    A photo is a flat colour whose red channel is the person's number; its embedding is the
    person's direction plus noise. A prompt's embedding is the direction of the known person
    it names, if any (plus a little of the template), else a random direction: so the model
    picks the real name for known people and nothing in particular for the others.
    """

    name = "test:knowing"
    identity = "knowing-model-v1"
    logit_scale = 100.0

    def __init__(self, people: Sequence[str], known: Sequence[str], dim: int = 64) -> None:
        self.people = list(people)
        self.known = set(known)
        self.dim = dim
        self.image_calls = 0
        self.text_calls = 0

    def photo(self, person: str, variant: int = 0) -> Image.Image:
        number = self.people.index(person) + 1
        return Image.new("RGB", (40, 40), (number, variant, 0))

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.image_calls += len(images)
        out = []
        for image in images:
            red, green, _ = image.getpixel((0, 0))
            person = self.people[red - 1]
            noise = _unit(f"noise{red}-{green}", self.dim)
            out.append(_unit(f"person:{person}", self.dim) + 0.3 * noise)
        return np.stack([v / np.linalg.norm(v) for v in out]).astype(np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.text_calls += len(texts)
        out = []
        for text in texts:
            named = [p for p in self.known if p in text]
            v = _unit(f"text:{text}", self.dim)
            if named:
                v = _unit(f"person:{named[0]}", self.dim) + 0.2 * v
            out.append(v / np.linalg.norm(v))
        return np.stack(out).astype(np.float32)


@pytest.fixture
def knowing_model() -> KnowingModel:
    people = ["Adrianne León", "Lin-Manuel Miranda", "Conan O'Brien", "Jane Doe", "Max Mustermann",
              "Erika Musterfrau"]
    return KnowingModel(people, known=people[:3])


class FamiliarityModel:
    """An EmbeddingModel with three kinds of people, by construction.

    - ``associated``: the model links their face to their name (the name's prompts point at
      their face) and knows the name (it also points at faces in general);
    - ``familiar``: the model has seen the name only as text: its prompts point at faces in
      general, not at this person's;
    - everyone else (and every decoy name) is unknown: random directions.
    Each photo is a flat colour image whose pixel encodes (person number, variant). Every
    image shares a common "face" direction, which is what a familiar name responds to.
    """

    name = "test:familiarity"
    logit_scale = 100.0

    def __init__(
        self,
        people: Sequence[str],
        associated: Sequence[str],
        familiar: Sequence[str],
        templates: Sequence[str] | None = None,
        dim: int = 96,
    ) -> None:
        from idia.prompts import PAPER_TEMPLATES

        self.people = list(people)
        self.associated = set(associated)
        self.familiar = set(familiar)
        self.templates = list(templates or PAPER_TEMPLATES)
        self.dim = dim
        self.identity = "familiarity-" + hashlib.blake2b(
            json.dumps([self.people, sorted(self.associated), sorted(self.familiar)]).encode(),
            digest_size=8,
        ).hexdigest()

    def photo(self, person: str, variant: int = 0) -> Image.Image:
        number = self.people.index(person) + 1
        return Image.new("RGB", (24, 24), (number % 256, number // 256, variant))

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = []
        for image in images:
            low, high, variant = image.getpixel((0, 0))
            person = self.people[low + 256 * high - 1]
            v = (
                _unit(f"person:{person}", self.dim)
                + 0.7 * _unit(f"noise:{person}:{variant}", self.dim)
                + 1.0 * _unit("face", self.dim)
            )
            out.append(v / np.linalg.norm(v))
        return np.stack(out).astype(np.float32)

    @functools.cached_property
    def _frames(self) -> tuple[list[str], re.Pattern]:
        """The templates, the longest frame first (the earlier template first among frames of
        one length), and one pattern whose n-th group is the name in the n-th of them."""
        frames = sorted((t for t in self.templates if t != "{}"),
                        key=lambda t: -len(t.replace("{}", "")))
        pattern = "|".join("{}(.+){}".format(*map(re.escape, t.split("{}"))) for t in frames)
        return frames, re.compile(f"^(?:{pattern})$", re.DOTALL)

    def _split(self, text: str) -> tuple[str, str]:
        """(template, name) of a prompt: the longest template that frames it."""
        frames, pattern = self._frames
        found = pattern.match(text)
        if found is None:
            return "{}", text
        return frames[found.lastindex - 1], found.group(found.lastindex)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, computed for the whole batch at once (the audits of the tests
        encode hundreds of thousands of prompts)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        templates, names = zip(*map(self._split, texts), strict=True)
        v = np.stack([_unit(f"template:{t}", self.dim) for t in templates]) + 0.6 * np.stack(
            [_unit(f"name:{n}", self.dim) for n in names])
        associated = [i for i, n in enumerate(names) if n in self.associated]
        familiar = [i for i, n in enumerate(names) if n in self.familiar and
                    n not in self.associated]
        if associated:
            v[associated] = v[associated] + 1.5 * np.stack(
                [_unit(f"person:{names[i]}", self.dim) for i in associated]
            ) + 0.6 * _unit("face", self.dim)
        v[familiar] = v[familiar] + 0.6 * _unit("face", self.dim)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def familiarity_people() -> dict[str, list[str]]:
    """150 realistic names drawn like decoys (both sexes, mixed): 50 associated, 25 familiar,
    75 unknown."""
    from idia.names import default_pool, sample_decoys

    names = sample_decoys(150, default_pool(), seed=1234)
    names = [names[i] for i in np.random.default_rng(0).permutation(len(names))]
    return {"associated": names[:50], "familiar": names[50:75], "unknown": names[75:]}


@pytest.fixture(scope="session")
def familiarity_model(familiarity_people) -> FamiliarityModel:
    people = [n for group in familiarity_people.values() for n in group]
    return FamiliarityModel(
        people, familiarity_people["associated"], familiarity_people["familiar"]
    )


@pytest.fixture(scope="session")
def familiarity_lab(familiarity_model, familiarity_people, tmp_path_factory) -> Iterator[Path]:
    """A lab folder as `idia lab` leaves it, without the training, audited by the
    familiarity model (test_claims reads its audit, test_web serves it): the "associated"
    people are members at 75 and 25 pairs, the "familiar" at 1 pair (the model knows their
    names only as text), the unknown are non-members. 4 flat-colour PNGs per person, in which
    no face can be found; the audit is a real one (whole photos, as the card says). Read only,
    like ``quick_lab``."""
    from idia.audit import run_audit
    from idia.engine import IdentityInferenceAttack

    root = tmp_path_factory.mktemp("familiarity_lab")
    counts = {name: 75 if i % 2 == 0 else 25
              for i, name in enumerate(familiarity_people["associated"])}
    counts |= {name: 1 for name in familiarity_people["familiar"]}
    counts |= {name: 0 for name in familiarity_people["unknown"]}
    for name in counts:
        folder = root / "people" / name.replace(" ", "_")
        folder.mkdir(parents=True)
        for variant in range(4):
            familiarity_model.photo(name, variant).save(folder / f"{variant}.png")
    with (root / "membership.csv").open("w") as f:
        f.write("name,member,count\n")
        f.writelines(f"{n},{str(c > 0).lower()},{c}\n" for n, c in counts.items())
    attacker = IdentityInferenceAttack(familiarity_model, crop="none", num_names=300, seed=0,
                                       name_decoys=200, progress=False)
    run_audit(attacker, root / "people", root / "run", root / "membership.csv",
              log=lambda _: None)
    (root / "model").mkdir()
    (root / "model" / "model.card.json").write_text(json.dumps({
        "idia_model_card": 1,
        "name": "Synthetic lab model",
        "photos": {"crop": "none", "face_margin": 0.3},
        "trained_on": {"made_by": "idia lab", "seed": 0, "people": "../people",
                       "audit_run": "../run", "membership": "../membership.csv",
                       "synthetic": True},
    }))
    before = _snapshot(root)
    yield root
    assert _snapshot(root) == before, "a test wrote into the shared familiarity lab"


LFW_SMALL_PEOPLE = {  # name -> photos copied (real people of LFW, both sexes, many origins)
    "Colin_Powell": 4, "Tony_Blair": 4, "Hugo_Chavez": 3, "Junichiro_Koizumi": 3,
    "Serena_Williams": 4, "Venus_Williams": 3, "Gloria_Macapagal_Arroyo": 3,
    "Jennifer_Lopez": 2, "Condoleezza_Rice": 2, "Nicole_Kidman": 2, "Halle_Berry": 2,
    "Mahmoud_Abbas": 2, "Ai_Sugiyama": 2, "AJ_Cook": 1, "Aaron_Eckhart": 1,
}


@pytest.fixture(scope="session")
def lfw_small(shared_data, tmp_path_factory) -> Path:
    """A small copy of LFW in scikit-learn's layout (DIR/lfw_home/lfw_funneled/<Name>/...):
    15 people, 38 photos, copied from ../shared/data into a temporary folder."""
    import shutil

    source = shared_data / "faces" / "lfw" / "lfw_home" / "lfw_funneled"
    root = tmp_path_factory.mktemp("lfw_small")
    for folder, n in LFW_SMALL_PEOPLE.items():
        (root / "lfw_home" / "lfw_funneled" / folder).mkdir(parents=True)
        for photo in sorted((source / folder).glob("*.jpg"))[:n]:
            shutil.copyfile(photo, root / "lfw_home" / "lfw_funneled" / folder / photo.name)
    return root
