"""Certify a defence on a finished lab: erase half of the members, attack everyone again.

The lab knows who is in the model, so it can verify an erasure on the same people the attack
found: a seeded half of the members of every injected count is erased (``unlearn``: minutes of
fine-tuning, :mod:`idia.unlearn`; ``mask-names``: a full retraining with their names masked
in every caption, CC3M's preprocessing), and then

- the unlearned members' detection rate should fall to the non-members' level,
- the kept members' rate should stay within its interval,
- zero-shot accuracy and recall@1 on held-out synthetic data should drop by at most a point,
- name spellings never used as triggers (and, for the image encoder, the photos that were
  used) show what still leaks.

DIR/defence/<method>/names.csv         who was erased (name,count)
DIR/defence/<method>/model/            the new model (``idia unlearn``'s folder, or retrained)
DIR/defence/<method>/run_after/        the audit of every person on the new model
DIR/defence/<method>/variants/<kind>/  people folder under that spelling, run_before, run_after
DIR/defence/<method>/defence.json      the figures, also in DIR/summary.json under "defence"
DIR/defence/<method>/report.html       the before/after page (also spliced into DIR/report.html)
DIR/defence/<method>/cache/            the embedding cache of these attacks (prompts and the
                                       lab's synthetic photos)
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from idia.errors import IdiaError
from idia.lab import train
from idia.lab.pipeline import LabPreset
from idia.people import person_folder_name
from idia.run_folder import RESULTS, RunFolder, RunFolderError
from idia.unlearn.method import UnlearnSettings, caption_pattern, unlearn
from idia.unlearn.utility import HELDOUT_SEED_OFFSET
from idia.unlearn.variants import HELD_OUT_KINDS, name_variants

METHODS = ("unlearn", "mask-names")
CALIBRATED_TESTS = ("name", "face")  # the audit's calibrated tests, where present
CALIBRATED_ALPHA = 0.05
IMAGE_PHOTOS_PER_PERSON = 20


class DefenceError(IdiaError, ValueError):
    """The defence cannot run on this folder; the message says what to change."""


# ---------------------------------------------------------------------------------------------
# Who is erased, and the rates (pure)


def choose_unlearned(membership: pd.DataFrame, seed: int) -> list[str]:
    """Half of the members of every injected count (seeded), so both halves span all counts.

    ``membership``: columns name, member, count. Odd groups alternate which half gets the
    extra person, so the two halves differ in size by at most one."""
    rng = np.random.default_rng([seed, 31])
    members = membership[membership["member"].astype(bool)]
    chosen: list[str] = []
    extra = 0
    for _, group in sorted(members.groupby("count"), key=lambda item: item[0]):
        names = sorted(group["name"])
        take = len(names) // 2 + (len(names) % 2) * extra
        extra ^= len(names) % 2
        chosen += [names[i] for i in sorted(rng.permutation(len(names))[:take])]
    return sorted(chosen)


@dataclass(frozen=True)
class Rule:
    """How a person is called a member: the paper's verdict column, or a p-value <= alpha."""

    column: str
    alpha: float | None = None

    def describe(self) -> str:
        return self.column if self.alpha is None else f"{self.column} <= {self.alpha}"

    def detected(self, results: pd.DataFrame) -> pd.Series:
        values = results[self.column]
        if self.alpha is None:
            return values.astype(bool)
        return values.astype(float) <= self.alpha


PAPER_RULE = Rule("member")


def calibrated_rules(*frames: pd.DataFrame) -> dict[str, Rule]:
    """The calibrated tests present in every results table: the audit's own verdict column
    (``name_verdict``: Benjamini-Hochberg across the run's people) where it exists, and each
    person's own p-value at ``CALIBRATED_ALPHA`` (``name_unadjusted``: what one person's
    ``idia check`` says; BH needs more reference people than a lab has to reject for the face
    test, see docs/evaluation.md)."""
    rules = {}
    for test in CALIBRATED_TESTS:
        if all(f"{test}_verdict" in frame.columns for frame in frames):
            rules[test] = Rule(f"{test}_verdict")
        if all(f"p_{test}" in frame.columns for frame in frames):
            rules[f"{test}_unadjusted"] = Rule(f"p_{test}", CALIBRATED_ALPHA)
    return rules


def detection_rate(results: pd.DataFrame, names: Sequence[str], rule: Rule = PAPER_RULE) -> dict:
    """n, detected, rate and its 95% Wilson interval among ``names`` (people without usable
    photos are left out: they cannot be detected either way)."""
    from scipy.stats import binomtest

    rows = results[results["name"].isin(names) & (results["n_photos"] > 0)]
    n, detected = len(rows), int(rule.detected(rows).sum())
    if not n:
        return {"n": 0, "detected": 0, "rate": None, "ci": [None, None]}
    interval = binomtest(detected, n).proportion_ci(0.95, method="wilson")
    return {"n": n, "detected": detected, "rate": detected / n,
            "ci": [float(interval.low), float(interval.high)]}


def group_figures(
    before: pd.DataFrame, after: pd.DataFrame, names: Sequence[str], rule: Rule, rate: str
) -> dict[str, Any]:
    """One group's rate before and after, with intervals and mean scores."""
    b, a = detection_rate(before, names, rule), detection_rate(after, names, rule)
    out = {
        "n": b["n"],
        f"{rate}_before": b["rate"],
        f"{rate}_after": a["rate"],
        "ci_before": b["ci"],
        "ci_after": a["ci"],
    }
    if rule is PAPER_RULE:
        out["mean_score_before"] = _mean_score(before, names)
        out["mean_score_after"] = _mean_score(after, names)
    return out


def _mean_score(results: pd.DataFrame, names: Sequence[str]) -> float | None:
    scores = results.loc[results["name"].isin(names), "score"]
    return float(scores.mean()) if len(scores) else None


def groups(membership: pd.DataFrame, unlearned: Sequence[str]) -> dict[str, list[str]]:
    members = membership.loc[membership["member"].astype(bool), "name"]
    return {
        "unlearned": list(unlearned),
        "kept": [n for n in members if n not in set(unlearned)],
        "non_members": list(membership.loc[~membership["member"].astype(bool), "name"]),
    }


def certify(
    before: pd.DataFrame, after: pd.DataFrame, membership: pd.DataFrame, unlearned: Sequence[str]
) -> dict[str, Any]:
    """The three groups under the paper's rule, and under each calibrated test present."""
    people = groups(membership, unlearned)
    figures: dict[str, Any] = {
        "unlearned": group_figures(before, after, people["unlearned"], PAPER_RULE, "tpr"),
        "kept": group_figures(before, after, people["kept"], PAPER_RULE, "tpr"),
        "non_members": group_figures(before, after, people["non_members"], PAPER_RULE, "fpr"),
    }
    calibrated = {
        name: {
            "rule": rule.describe(),
            "unlearned": group_figures(before, after, people["unlearned"], rule, "tpr"),
            "kept": group_figures(before, after, people["kept"], rule, "tpr"),
            "non_members": group_figures(before, after, people["non_members"], rule, "fpr"),
        }
        for name, rule in calibrated_rules(before, after).items()
    }
    if calibrated:
        figures["calibrated"] = calibrated
    return figures


# ---------------------------------------------------------------------------------------------
# Folders


@dataclass(frozen=True)
class Lab:
    """What a finished lab folder holds that the defence needs."""

    path: Path
    summary: dict[str, Any]
    preset: LabPreset
    seed: int
    spec: str
    membership: pd.DataFrame
    results: pd.DataFrame


def read_lab(lab_dir: str | Path) -> Lab:
    path = Path(lab_dir).resolve()
    summary_path = path / "summary.json"
    needed = [summary_path, path / "membership.csv", path / "run" / RESULTS, path / "people"]
    missing = [str(p.relative_to(path)) for p in needed if not p.exists()]
    if missing:
        raise DefenceError(f"{path} is not a finished lab folder (missing: {', '.join(missing)})")
    try:
        results = RunFolder(path / "run").results
    except RunFolderError as err:
        raise DefenceError(f"{path} is not a finished lab folder ({err})") from err
    summary = json.loads(summary_path.read_text())
    if summary.get("faces"):
        raise DefenceError(
            f"{path} is a lab of real people (idia lab --faces): its model's image tower is a "
            "locked face encoder that idia unlearn does not fine-tune; defences run on "
            "synthetic labs"
        )
    preset = LabPreset(**{k: tuple(v) if isinstance(v, list) else v
                          for k, v in summary["preset"].items()})
    membership = pd.read_csv(path / "membership.csv", dtype={"name": str})
    membership["member"] = membership["member"].astype(str).str.lower().eq("true")
    return Lab(path, summary, preset, int(summary["seed"]), summary["model"], membership, results)


def _person_folder(people: Path, name: str) -> Path:
    return people / person_folder_name(name)


def variant_people(
    lab: Lab, names: Sequence[str], kind: str, out: Path
) -> tuple[Path, Path, dict[str, str]]:
    """A people folder with each person's held-out photos under their ``kind`` spelling, and
    its membership table. People whose spelling collides with another's are left out."""
    people_dir, mapping, taken = out / "people", {}, set()
    counts = lab.membership.set_index("name")["count"]
    for name in names:
        texts = [v.text for v in name_variants(name, (kind,))]
        if not texts or texts[0].casefold() in taken:
            continue
        taken.add(texts[0].casefold())
        mapping[name] = texts[0]
        shutil.copytree(_person_folder(lab.path / "people", name),
                        _person_folder(people_dir, texts[0]))
    table = pd.DataFrame({"name": list(mapping.values()), "member": "true",
                          "count": [int(counts[n]) for n in mapping]})
    table.to_csv(out / "membership.csv", index=False)
    return people_dir, out / "membership.csv", mapping


def unlearning_photos(lab: Lab, names: Sequence[str], out: Path, seed: int) -> Path:
    """Each person's photos that the attack never uses (not held out): what a provider could
    find of them in its training data. Up to ``IMAGE_PHOTOS_PER_PERSON``, seeded."""
    for index, name in enumerate(names):
        held_out = {p.name for p in _person_folder(lab.path / "people", name).iterdir()}
        pool = sorted(p for p in _person_folder(lab.path / "data" / "people", name).iterdir()
                      if p.name not in held_out)
        rng = np.random.default_rng([seed, 37, index])
        picks = sorted(rng.permutation(len(pool))[:IMAGE_PHOTOS_PER_PERSON])
        target = _person_folder(out, name)
        target.mkdir(parents=True)
        for i in picks:
            shutil.copy2(pool[i], target / pool[i].name)
    return out


# ---------------------------------------------------------------------------------------------
# The experiment


def run_defence(
    lab_dir: str | Path,
    method: str = "unlearn",
    seed: int | None = None,
    settings: UnlearnSettings | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Erase a seeded half of a finished lab's members, re-attack, and return (and write into
    DIR/summary.json under "defence") the before/after figures."""
    from idia.audit import run_audit
    from idia.engine import IdentityInferenceAttack, create_attack
    from idia.models import load_model
    from idia.unlearn.utility import compare_utility, heldout_benchmark, measure_utility

    if method not in METHODS:
        raise DefenceError(f"unknown defence {method!r}; choose one of {', '.join(METHODS)}")
    lab = read_lab(lab_dir)
    seed = lab.seed if seed is None else seed
    out = lab.path / "defence" / method
    if out.exists() and any(out.iterdir()):
        raise DefenceError(f"{out} exists; remove it to run the {method} defence again")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    erased = choose_unlearned(lab.membership, seed)
    counts = lab.membership.set_index("name")["count"]
    pd.DataFrame({"name": erased, "count": [int(counts[n]) for n in erased]}).to_csv(
        out / "names.csv", index=False
    )
    settings = replace(settings or UnlearnSettings(), seed=seed, crop="none")

    start = time.perf_counter()
    record: dict[str, Any] | None = None
    people_for_images = None
    if method == "unlearn":
        if settings.image:
            people_for_images = unlearning_photos(lab, erased, out / "unlearn_people", seed)
        n_members = int(lab.membership["member"].sum())
        log(f"[1/4] defence: unlearning {len(erased)} of {n_members} members "
            f"({settings.encoder} encoder, {settings.steps} steps)")
        result = unlearn(lab.spec, erased, out / "model", settings, people_dir=people_for_images,
                         captions=_training_captions(lab), progress=False,
                         log=lambda m: log(f"      {m}"))
        spec, record = result.spec, result.record
    else:
        log(f"[1/4] defence: retraining with the names of {len(erased)} members masked")
        spec = _retrain_masked(lab, erased, out, log)
    timings["defence_s"] = time.perf_counter() - start

    def attacker(model_spec: str) -> IdentityInferenceAttack:
        # the lab's people are synthetic: their photos may be cached, and are then encoded
        # once per model, not once per held-out spelling as well
        return create_attack(model_spec, num_names=lab.preset.num_names, seed=lab.seed,
                             name_decoys=lab.preset.name_decoys, crop="none",
                             cache_dir=out / "cache", cache_images=True, progress=False)

    quiet = lambda message: None  # noqa: E731
    start = time.perf_counter()
    log(f"[2/4] defence: attacking all {len(lab.membership)} people again")
    after_attack = attacker(spec)
    run_audit(after_attack, lab.path / "people", out / "run_after", lab.path / "membership.csv",
              log=quiet)
    after = RunFolder(out / "run_after").results
    figures = certify(lab.results, after, lab.membership, erased)
    timings["attack_s"] = time.perf_counter() - start

    start = time.perf_counter()
    log("[3/4] defence: utility on held-out synthetic data (zero-shot, recall@1)")
    benchmark = heldout_benchmark(lab.preset.image_size, lab.seed)
    original_model = load_model(lab.spec, device="cpu")
    new_model = load_model(spec, device="cpu")
    utility_before = measure_utility(original_model, benchmark)
    utility_after = measure_utility(new_model, benchmark)
    timings["utility_s"] = time.perf_counter() - start

    start = time.perf_counter()
    log("[4/4] defence: what still leaks: spellings never used as triggers "
        f"({', '.join(HELD_OUT_KINDS)})")
    before_attack = attacker(lab.spec)
    variants = {}
    for kind in HELD_OUT_KINDS:
        folder = out / "variants" / kind
        folder.mkdir(parents=True)
        people_dir, membership_csv, mapping = variant_people(lab, erased, kind, folder)
        if not mapping:
            continue
        runs = {}
        for label, attack in (("before", before_attack), ("after", after_attack)):
            run_audit(attack, people_dir, folder / f"run_{label}", membership_csv, log=quiet)
            runs[label] = RunFolder(folder / f"run_{label}").results
        rates = group_figures(runs["before"], runs["after"], list(mapping.values()), PAPER_RULE,
                              "tpr")
        variants[kind] = {**rates, "example": next(iter(mapping.items()))}
    if people_for_images is not None:
        runs = {}
        membership_csv = out / "unlearn_people_membership.csv"
        pd.DataFrame({"name": erased, "member": "true"}).to_csv(membership_csv, index=False)
        for label, attack in (("before", before_attack), ("after", after_attack)):
            target = out / "variants" / "photos_used" / f"run_{label}"
            run_audit(attack, people_for_images, target, membership_csv, log=quiet)
            runs[label] = RunFolder(target).results
        variants["photos_used_in_unlearning"] = group_figures(
            runs["before"], runs["after"], erased, PAPER_RULE, "tpr"
        )
    timings["variants_s"] = time.perf_counter() - start

    defence = {
        "method": method,
        "encoder": settings.encoder if method == "unlearn" else None,
        "seed": seed,
        "model": spec,
        "unlearned_names": erased,
        **figures,
        "utility": {
            **compare_utility(utility_before, utility_after, seed),
            "heldout": "synthetic people, objects and image-caption pairs drawn with seed "
            f"lab seed + {HELDOUT_SEED_OFFSET} (never in training)",
        },
        "variants": variants,
        "unlearn": None
        if record is None
        else {k: record[k] for k in ("settings", "texts", "images", "losses", "seconds")},
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    _write(lab, out, defence)
    return defence


def _training_captions(lab: Lab) -> Path | None:
    """The lab's training set as the clean texts: a provider erasing people has its training
    captions, and they name the other people the model knows, which must keep their place."""
    path = lab.path / "trainset" / "train.csv"
    return path if path.is_file() else None


def _retrain_masked(lab: Lab, names: Sequence[str], out: Path, log: Callable[[str], None]) -> str:
    """The lab's own training set with ``names`` replaced by "person" in every caption (their
    photos stay), trained with the lab's settings and seed: CC3M-style masking."""
    pattern = caption_pattern(names, ("full",))
    frame = pd.read_csv(lab.path / "trainset" / "train.csv", dtype=str)
    masked = frame["caption"].map(lambda c: pattern.sub("person", c))
    log(f"      {int((masked != frame['caption']).sum())} captions masked")
    trainset = out / "trainset"
    trainset.mkdir()
    frame.assign(caption=masked).to_csv(trainset / "train.csv", index=False)
    preset = lab.preset
    result = train.train_clip(
        trainset / "train.csv", trainset / "logs", "masked",
        train.TrainSettings(model=preset.model, epochs=preset.epochs, batch_size=preset.batch_size,
                            lr=preset.lr, warmup=preset.warmup, seed=lab.seed,
                            log_every_n_steps=20),
        on_line=None,
    )
    model_dir = out / "model"
    model_dir.mkdir()
    config = shutil.copyfile(result.model_config, model_dir / result.model_config.name)
    checkpoint = shutil.copyfile(result.checkpoint, model_dir / "checkpoint.pt")
    return f"open_clip:{config}:{checkpoint}"


def _write(lab: Lab, out: Path, defence: dict[str, Any]) -> None:
    from idia.report.compare import splice_defence_section, write_defence_report

    (out / "defence.json").write_text(json.dumps(defence, indent=2, ensure_ascii=False))
    summary = json.loads((lab.path / "summary.json").read_text())
    summary["defence"] = defence
    (lab.path / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    write_defence_report(defence, out / "report.html")
    if (lab.path / "report.html").is_file():
        splice_defence_section(lab.path / "report.html", defence)
