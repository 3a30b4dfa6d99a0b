"""The full-name null wired into the attack: a never-seen name whose parts the model knows is
not flagged against its full-name decoys (it is against the paper's); a seen full name still
is; the paper's candidates stay as they were; the null is stated in every output; sex and
origin are declared or inferred, never mixed; names no test can take fail with one line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from idia import IdentityInferenceAttack, claims
from idia.audit import run_audit
from idia.cli import app
from idia.fullname import FULL_NAME_NULL, NOT_TESTED
from idia.labels import NULL_LABELS
from idia.name_null import AUDIT_SOURCE
from idia.nameparts import fold
from idia.names import build_candidates, default_pool
from idia.origins import OriginTableError
from idia.serve.markdown import verdict_markdown

runner = CliRunner()
TEMPLATES = ["a photo of {}.", "{}", "a portrait of {}."]  # few templates: a fast suite
POOL = default_pool()
SEEN_GIVEN = POOL.first_names["m"][50:200]  # parts the model saw in captions ...
SEEN_FAMILY = POOL.surnames[50:200]
UNSEEN_GIVEN = POOL.first_names["m"][400:406]  # ... and parts it never saw
UNSEEN_FAMILY = POOL.surnames[400:406]
MEMBERS = [f"{g} {f}" for g, f in zip(SEEN_GIVEN[:10], SEEN_FAMILY[:10], strict=True)]
NON_MEMBERS = {
    "seen first name": [f"{g} {f}" for g, f in zip(SEEN_GIVEN[10:16], UNSEEN_FAMILY,
                                                   strict=True)],
    "seen surname": [f"{g} {f}" for g, f in zip(UNSEEN_GIVEN, SEEN_FAMILY[10:16], strict=True)],
    "both seen, never together": [f"{g} {f}" for g, f in zip(SEEN_GIVEN[16:22],
                                                             SEEN_FAMILY[22:28], strict=True)],
}


def _unit(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).normal(size=dim)
    return v / np.linalg.norm(v)


class PartsModel:
    """An EmbeddingModel that saw name parts in its captions, and some full names, by
    construction. Prompts of names it never saw lie in one crowd (a common direction plus a
    little of their own); each seen part among a prompt's words pulls it away from the crowd
    towards that part's direction (prompts sharing a part lie close, as in a real text tower)
    and a little towards a common "face" direction; a seen full name pulls it towards its own
    direction and its person's. A photo is its person's direction plus the "face" direction:
    a seen part responds a little on every face, a seen full name on its own person's face."""

    name = "test:parts"
    logit_scale = 100.0

    def __init__(self, parts: Sequence[str], names: Sequence[str], dim: int = 64) -> None:
        self.parts = {fold(p) for p in parts}
        self.names = {fold(n): n for n in names}
        self.dim = dim
        self.people: list[str] = []
        self.identity = "parts-" + hashlib.blake2b(
            json.dumps([sorted(self.parts), sorted(self.names)]).encode(), digest_size=8
        ).hexdigest()

    def photo(self, person: str, variant: int = 0) -> Image.Image:
        if person not in self.people:
            self.people.append(person)
        return Image.new("RGB", (24, 24), (self.people.index(person) + 1, variant, 0))

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = []
        for image in images:
            number, variant, _ = image.getpixel((0, 0))
            person = self.people[number - 1]
            v = (_unit(f"person:{fold(person)}", self.dim) + _unit("face", self.dim)
                 + 0.5 * _unit(f"noise:{person}:{variant}", self.dim))
            out.append(v / np.linalg.norm(v))
        return np.stack(out).astype(np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for text in texts:
            folded = fold(text)
            v = _unit("crowd", self.dim) + 0.5 * _unit(f"text:{text}", self.dim)
            for word in folded.replace(".", " ").split():
                if word in self.parts:
                    v = v + 0.8 * _unit(f"part:{word}", self.dim) + 0.3 * _unit("face", self.dim)
            for key in self.names:
                if key in folded:
                    v = v + 1.5 * _unit(f"name:{key}", self.dim) + 1.5 * _unit(
                        f"person:{key}", self.dim)
            out.append(v / np.linalg.norm(v))
        return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def parts_model() -> PartsModel:
    return PartsModel([*SEEN_GIVEN, *SEEN_FAMILY], MEMBERS)


def make_attack(model, **kwargs) -> IdentityInferenceAttack:
    settings = {"crop": "none", "templates": TEMPLATES, "num_names": 200, "name_decoys": 200,
                "seed": 3, "progress": False}
    return IdentityInferenceAttack(model, **(settings | kwargs))


def paper_text_p(attack: IdentityInferenceAttack, name: str) -> float:
    """The text-only test of ``name`` against the paper's decoys (what idia did before)."""
    candidates = attack.candidates([name])
    real, decoys = attack.text_statistics(candidates, [0])
    return claims.text_test(real[0], decoys[0], candidates.decoy_sexes,
                            candidates.sexes[0]).p_value


def test_never_seen_names_of_seen_parts_are_not_flagged_but_seen_names_are(parts_model):
    attack = make_attack(parts_model)
    full, paper = {}, {}
    for kind, names in NON_MEMBERS.items():
        for name in names:
            null = attack.name_null(name, origin="US")
            assert null.sex == "m" and null.sex_basis == "inferred", (kind, null)
            paper[name] = paper_text_p(attack, name)
            if not null.tested:  # both parts more familiar than nearly all the pool's
                assert "too few on one side" in null.reason
                continue
            # 200, or 100 of one kind when a part is held fixed
            assert null.n_decoys in (100, 200) and set(null.kinds) <= {"given_kept",
                                                                       "family_kept",
                                                                       "recombined"}
            test = attack.text_only_test(null)
            assert test.null == FULL_NAME_NULL and test.n_null == null.n_decoys
            full[name] = test.p_value
    assert len(full) >= 15
    # the full-name decoys answer "has the model seen this name?": about 5% at p <= 0.05
    assert sum(p <= 0.05 for p in full.values()) <= 1, full
    # the paper's random decoys answer "has it seen a part of it?": many flagged, and nearly
    # every name made of two seen parts never seen together
    assert sum(p <= 0.05 for p in paper.values()) >= 6, paper
    together = NON_MEMBERS["both seen, never together"]
    assert sum(paper[name] <= 0.05 for name in together) >= 4, paper
    members = [attack.text_only_test(attack.name_null(name, origin="US")) for name in MEMBERS]
    assert sum(m.tested and m.p_value <= 0.05 for m in members) >= 8, members


def test_a_check_of_a_never_seen_name_with_a_seen_first_name(parts_model):
    """On photos: the name test's candidates are the full-name decoys; the paper's rule keeps
    its 200 candidates, exactly those it drew before."""
    attack = make_attack(parts_model)
    name = NON_MEMBERS["seen first name"][1]
    photos = [parts_model.photo(name, v) for v in range(4)]
    result = attack.check(photos, name, origin="US")
    name_test, text_test = result.claims["name_familiarity"], result.claims["text_only"]
    n_decoys = result.name_null["n_decoys"]
    assert name_test.tested and name_test.null == FULL_NAME_NULL and name_test.n_null == n_decoys
    assert name_test.p_value > 0.05 and text_test.p_value > 0.05
    assert result.name_null["key"] == "full_name" and n_decoys in (100, 200)
    assert result.name_null["origin"] == "US" and result.name_null["sex"] == "m"
    assert sum(result.name_null["decoy_counts"].values()) == n_decoys
    assert result.n_candidates == 200
    paper = build_candidates([name], 200, 3)  # the paper's candidates, as drawn before
    assert {t.prediction for t in result.templates} - {None} <= set(paper.names)
    member = attack.check([parts_model.photo(MEMBERS[0], v) for v in range(4)], MEMBERS[0],
                          origin="US")
    assert member.claims["name_familiarity"].p_value <= 0.05


def test_sex_unknown_keeps_the_given_name_and_a_declared_sex_varies_it(parts_model):
    attack = make_attack(parts_model)
    unknown = attack.name_null("Zqxwvy Johnson", origin="US")
    assert unknown.sex is None and unknown.sex_basis == "unknown"
    assert set(unknown.kinds) == {"given_kept"}
    assert all(d.startswith("Zqxwvy ") for d in unknown.decoys), "never a decoy of either sex"
    assert "unknown" in unknown.notes[0] and "--sex" in unknown.notes[0]
    declared = attack.name_null("Zqxwvy Johnson", origin="US", sex="f")
    assert declared.sex == "f" and declared.sex_basis == "declared"
    others = {d.split()[0] for d, k in zip(declared.decoys, declared.kinds, strict=True)
              if k == "family_kept"}
    assert others and others <= set(POOL.first_names["f"]), "other given names are female"


def test_origin_is_inferred_or_declared(parts_model):
    attack = make_attack(parts_model)
    inferred = attack.name_null("Jan Kowalski")
    assert inferred.origin == "PL" and "names-dataset" in inferred.source
    declared = attack.name_null("Jan Kowalski", origin="de")
    assert declared.origin == "DE"
    with pytest.raises(OriginTableError, match="unknown origin 'XX'"):
        attack.name_null("Jan Kowalski", origin="XX")


def test_a_name_without_comparable_decoys_is_not_tested(parts_model):
    attack = make_attack(parts_model)
    result = attack.check([parts_model.photo("Madonna")], "Madonna")
    for claim in ("name_familiarity", "text_only"):
        test = result.claims[claim]
        assert not test.tested and test.p_value is None
        assert test.reason.startswith(NOT_TESTED) and "single-word" in test.reason
    assert result.name_null["key"] == "no_comparable_decoys"
    assert result.member is not None, "the paper's rule still runs on its candidates"


def test_a_closed_box_cannot_measure_part_familiarity(parts_model):
    class TopAnswerOnly:
        name, identity = "test:top-1", "top-1"

        def __init__(self, model):
            from idia.zeroshot import EmbeddingZeroShot
            self._answers = EmbeddingZeroShot(model)

        def zero_shot(self, images, text_groups):
            from idia.models import ZeroShotResult
            return ZeroShotResult(best=self._answers.zero_shot(images, text_groups).best)

    attack = make_attack(TopAnswerOnly(parts_model))
    result = attack.check([parts_model.photo(MEMBERS[0])], MEMBERS[0])
    assert result.name_null["key"] == "closed_box"
    assert not result.claims["name_familiarity"].tested
    assert "closed box" in result.claims["name_familiarity"].reason
    assert "closed box" in result.claims["text_only"].reason
    assert result.score is not None, "the paper's rule runs"


def test_the_web_page_names_the_null(parts_model):
    attack = make_attack(parts_model)
    name = MEMBERS[1]
    result = attack.check([parts_model.photo(name)], name, origin="US")
    page = verdict_markdown(result)
    assert f"200 {NULL_LABELS['full_name']}, from US" in page and FULL_NAME_NULL in page


# --- an audit --------------------------------------------------------------------------------


def save_people(model, names, folder, photos=2):
    for name in names:
        person = folder / name.replace(" ", "_")
        person.mkdir(parents=True)
        for v in range(photos):
            model.photo(name, v).save(person / f"{v}.png")
    return folder


def test_an_audit_recombines_its_own_people_and_uses_the_declared_sex(parts_model, tmp_path):
    women = POOL.first_names["f"][100:130]
    names = MEMBERS + [f"{g} {f}" for g, f in zip(SEEN_GIVEN[10:30], POOL.surnames[200:220],
                                                   strict=True)]
    names += [f"{g} {f}" for g, f in zip(women, POOL.surnames[220:250], strict=True)]
    people = save_people(parts_model, names, tmp_path / "people")
    sexes = ["m"] * 30 + ["f"] * 29 + [""]  # the last one's sex is not declared
    membership = pd.DataFrame({"name": names, "member": [n in MEMBERS for n in names],
                               "sex": sexes})
    membership.to_csv(tmp_path / "membership.csv", index=False)
    attack = make_attack(parts_model, name_decoys=200)
    summary = run_audit(attack, people, tmp_path / "run", tmp_path / "membership.csv",
                        log=lambda m: None)
    results = pd.read_csv(tmp_path / "run" / "results.csv").set_index("name")
    assert {"null", "origin", "n_decoys", "decoy_sex", "p_name_paper_null"} <= set(results)
    tested = results[results["null"] == "full_name"]
    assert len(tested) >= 50 and (tested["n_decoys"] == tested["n_name_null"]).all()
    own = tested[tested["decoy_source"] == AUDIT_SOURCE]
    assert len(own) >= 5, "recombinations of the audited people's own parts"
    nulls = pd.read_parquet(tmp_path / "run" / "name_null.parquet").set_index("name")
    given = {n.split()[0] for n in names}
    family = {n.split()[1] for n in names}
    for name in own.index[:5]:
        for decoy in nulls.loc[name, "decoys"]:
            first, last = decoy.split()
            assert first in given and last in family and decoy not in names
    assert (results.loc[names[:30], "decoy_sex"] == "m").all()
    assert (results.loc[names[30:59], "decoy_sex_basis"] == "declared").all()
    assert results.loc[names[59], "decoy_sex_basis"] in ("inferred", "unknown")
    assert summary["name_null"]["null"] == FULL_NAME_NULL
    assert summary["name_null"]["people"]["full_name"] == len(tested)
    # a check inside the audit's candidates takes the audit's own decoys: the same p-values
    name = own.index[0]
    photos = sorted((people / name.replace(" ", "_")).iterdir())
    check = attack.check(photos, name, candidates=tmp_path / "run")
    assert check.claims["name_familiarity"].p_value == pytest.approx(results.loc[name, "p_name"])
    assert check.name_null["source"] == AUDIT_SOURCE
    assert "name_null" not in check.extra["differs_from_audit"]


def test_an_audit_takes_declared_origins_and_refuses_unknown_codes(origin_table):
    from idia.name_null import NameNulls

    nulls = NameNulls(lambda prompts: np.stack([_unit(p, 16) for p in prompts]),
                      table=origin_table)
    names = ["Tom Baker", "Jan Kowalski"]
    inferred = nulls.for_people(names, ["m", "m"], TEMPLATES, 0, total=200)
    declared = nulls.for_people(names, ["m", "m"], TEMPLATES, 0, total=200,
                                origins=["pl", None])
    assert declared[0].origin == "PL" != inferred[0].origin, "the declared origin wins"
    assert declared[1].origin == inferred[1].origin, "None: inferred as before"
    assert set(declared[0].decoys).isdisjoint(inferred[0].decoys), "another origin's pools"
    with pytest.raises(OriginTableError):
        nulls.for_people(names, ["m", "m"], TEMPLATES, 0, total=200, origins=["XQ", None])
    with pytest.raises(ValueError, match="one origin"):
        nulls.for_people(names, ["m", "m"], TEMPLATES, 0, total=200, origins=["PL"])


# --- the command line: the null in words, and names no test can take ----------------------------


@pytest.fixture(scope="module")
def tiny_spec(tiny_open_clip) -> str:
    config, checkpoint = tiny_open_clip
    return f"open_clip:{config}:{checkpoint}"


def test_check_names_the_null_in_json_and_in_words(tiny_spec, tmp_path):
    common = ["--model", tiny_spec, "--templates", "0,1", "--num-names", "50",
              "--name-decoys", "200", "--cache-dir", str(tmp_path / "c")]
    result = runner.invoke(app, ["check", "--name", "Conan O'Brien", "--origin", "IE", "--json",
                                 *common])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["name_null"]["null"] == FULL_NAME_NULL
    assert payload["name_null"]["origin"] == "IE" and payload["name_null"]["n_decoys"] == 200
    assert payload["claims"]["text_only"]["null"] == FULL_NAME_NULL
    assert payload["n_candidates"] == 50
    human = runner.invoke(app, ["check", "--name", "Conan O'Brien", "--origin", "IE", *common])
    text = " ".join(human.stdout.split())
    assert human.exit_code == 0 and NULL_LABELS["full_name"] in text and "from IE" in text
    assert FULL_NAME_NULL in text


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("", [], "the name is empty"),
        ("!!! ...", [], "has no letters"),
        ("x" * 10_000, [], "10,000 characters"),
        ("สมชาย ใจดี", [], "no decoy names exist in the Thai script"),
        ("Jan Kowalski", ["--origin", "XX"], "unknown origin 'XX'"),
        ("Jan Kowalski", ["--sex", "x"], "--sex must be 'f' or 'm'"),
    ],
)
def test_a_name_no_test_can_take_is_one_error_line_and_nothing_is_written(
    tiny_spec, tmp_path, name, options, message
):
    photo = tmp_path / "me.png"
    Image.new("RGB", (32, 32), (120, 90, 60)).save(photo)
    args = ["check", str(photo), "--name", name, *options, "--model", tiny_spec,
            "--cache-dir", str(tmp_path / "cache"), "--report", str(tmp_path / "r.html")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.png"], "nothing written"


def test_an_audit_with_an_origin_no_pool_knows_is_one_error_line_and_writes_no_run(
    tiny_spec, tmp_path
):
    for name in ("Jan Kowalski", "Tom Baker"):
        folder = tmp_path / "people" / name.replace(" ", "_")
        folder.mkdir(parents=True)
        Image.new("RGB", (32, 32), (120, 90, 60)).save(folder / "1.png")
    pd.DataFrame({"name": ["Jan Kowalski", "Tom Baker"], "member": [1, 0],
                  "origin": ["XQ", ""]}).to_csv(tmp_path / "m.csv", index=False)
    result = runner.invoke(app, ["audit", "--people", str(tmp_path / "people"), "--model",
                                 tiny_spec, "--membership", str(tmp_path / "m.csv"),
                                 "--num-names", "100", "--cache-dir", str(tmp_path / "cache"),
                                 "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: ") and "XQ" in lines[-1], lines
    assert not (tmp_path / "run").exists(), "nothing written"


def test_builders_of_one_model_share_the_pools_part_embeddings() -> None:
    import gc
    import weakref

    from idia.name_null import NameNulls

    calls: list[list[str]] = []

    class Encoder:  # like an attack: the builder gets its bound method
        def __init__(self, tag: str) -> None:
            self.tag = tag

        def encode(self, prompts: list[str]) -> np.ndarray:
            calls.append([self.tag, *prompts])
            return np.stack([_unit(p, 16) for p in prompts])

    identity = f"test-shared-{np.random.default_rng().integers(2**62)}"
    first_encoder = Encoder("first")
    first = NameNulls(first_encoder.encode, identity=identity).for_name(
        "Tom Baker", TEMPLATES, 0, total=200)
    encoded = sum(len(c) - 1 for c in calls)
    assert encoded > 1000, "the pools' parts were encoded"
    gone = weakref.ref(first_encoder)
    del first_encoder
    gc.collect()
    assert gone() is None, "the shared memory keeps no attack (nor its open cache) alive"
    second = NameNulls(Encoder("second").encode, identity=identity).for_name(
        "Tom Baker", TEMPLATES, 0, total=200)
    assert sum(len(c) - 1 for c in calls) == encoded, "a second attack on the model reuses them"
    assert second.decoys == first.decoys
    third = Encoder("third")
    NameNulls(third.encode, identity=identity).for_name("Ann Baker", TEMPLATES, 0, total=200)
    assert {c[0] for c in calls[-1:]} <= {"third"}, "new parts go through the newest encoder"
    other = Encoder("other")
    NameNulls(other.encode, identity=identity + "-x").for_name("Tom Baker", TEMPLATES, 0,
                                                              total=200)
    assert calls[-1][0] == "other", "another model encodes its own"
