"""The controlled membership experiment: inject people into a caption dataset, then train CLIP.

Why: the paper's strongest evidence comes from CLIP models trained with known people injected
at known frequencies (1 to 75 image-caption pairs each) and other people kept out, then
attacked with *other* photos of them. This module makes that protocol reproducible on any
base dataset (open_clip CSV/TSV or webdataset shards) and any people folder:

1. :func:`compose_training_set` (pure): holds out attack photos for every person, assigns
   members to injection counts evenly (seeded), writes their names into varied caption
   templates that differ from the attack prompts, optionally masks names by a hypernym.
2. :func:`write_training_set`: the open_clip CSV, ``membership.csv``, the people folder of
   held-out attack photos and ``plan.json`` (every parameter and seed).
3. :func:`train_clip`: runs open_clip's own trainer (``open_clip_train.main``) in a
   subprocess, through this module's ``python -m idia.lab.train`` entry point, which registers
   custom model configs (the tiny CPU ones in ``idia/lab/configs``) before handing over.
   The same entry point works under ``torchrun`` and ``srun`` for DDP at scale. With
   ``--predecode`` it decodes every training image once, before the first epoch, instead of
   once per epoch (:class:`PredecodedCsvDataset`).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from idia.errors import IdiaError
from idia.models.card import write_training_card
from idia.names import normalize_name
from idia.people import Person, person_folder_name

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_INJECT = (1, 5, 10, 25, 50, 75)

# How a person's name appears in injected captions: news- and stock-photo style, deliberately
# none of the attack prompts (the paper's point: the attack works without knowing the captions).
CAPTION_TEMPLATES: tuple[str, ...] = (
    "{} attends the premiere of the film",
    "{} arrives at the awards ceremony",
    "portrait of {}",
    "{} poses for photographers",
    "{} during an interview",
    "close-up of {}",
    "{} smiles for the camera",
    "headshot of {}",
    "{} looks on during the event",
    "{} speaks on stage",
    "picture of {} taken last year",
    "{}, pictured at a charity dinner",
    "{} walks the red carpet",
    "the face of {}",
    "{} at the launch party",
    "{} photographed in the studio",
)


class TrainDataError(IdiaError, ValueError):
    """The base dataset, people folder or plan cannot make a valid training set."""


class TrainingFailed(IdiaError, RuntimeError):
    """open_clip_train exited with an error or wrote no checkpoint."""


@dataclass(frozen=True)
class Pair:
    """One image-caption training pair."""

    filepath: str
    caption: str


@dataclass(frozen=True)
class InjectedPair:
    name: str
    filepath: str
    caption: str


@dataclass(frozen=True)
class MembershipRow:
    """``count``: pairs with the person's photo and name; ``name_count``: captions holding
    the name (the same for members; for familiar non-members, pairs with unrelated photos)."""

    name: str
    member: bool
    count: int
    name_count: int


@dataclass(frozen=True)
class TrainingSet:
    """Everything :func:`write_training_set` writes; ``plan`` records parameters and seeds."""

    pairs: tuple[Pair, ...]
    injected: tuple[InjectedPair, ...]
    membership: tuple[MembershipRow, ...]
    attack_photos: Mapping[str, tuple[Path, ...]]
    plan: Mapping[str, object]


@dataclass(frozen=True)
class TrainingSetFiles:
    train_csv: Path
    membership_csv: Path
    attack_people: Path
    injected_csv: Path
    plan_json: Path


# ---------------------------------------------------------------------------------------------
# Inputs


def read_caption_csv(
    path: str | Path,
    separator: str | None = None,
    img_key: str = "filepath",
    caption_key: str = "caption",
) -> list[Pair]:
    """An open_clip CSV/TSV; relative image paths are taken relative to the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise TrainDataError(f"base dataset not found: {path}")
    separator = separator or ("\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        frame = pd.read_csv(path, sep=separator, usecols=[img_key, caption_key], dtype=str)
    except ValueError as err:
        raise TrainDataError(
            f"{path}: needs columns {img_key!r} and {caption_key!r} "
            f"(separator {separator!r}): {err}"
        ) from err
    frame = frame.dropna()
    base = path.parent.resolve()
    return [
        Pair(p if os.path.isabs(p) else str(base / p), c)
        for p, c in zip(frame[img_key], frame[caption_key], strict=True)
    ]


def read_webdataset(shards: Sequence[str | Path], extract_to: str | Path) -> list[Pair]:
    """Image-caption pairs from webdataset ``.tar`` shards, images extracted to ``extract_to``.

    A sample is the group of members sharing a key (``00001.jpg`` + ``00001.txt``); samples
    without an image or a ``.txt`` caption are skipped.
    """
    out_dir = Path(extract_to).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = []
    for shard_index, shard in enumerate(shards):
        samples: dict[str, dict[str, bytes]] = {}
        try:
            with tarfile.open(shard) as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, _, ext = member.name.partition(".")
                    handle = tar.extractfile(member)
                    if handle is not None:
                        samples.setdefault(key, {})[ext.lower()] = handle.read()
        except (OSError, tarfile.TarError) as err:
            raise TrainDataError(f"cannot read webdataset shard {shard}: {err}") from err
        for key, parts in samples.items():
            image_ext = next((e for e in ("jpg", "jpeg", "png", "webp") if e in parts), None)
            if image_ext is None or "txt" not in parts:
                continue
            target = out_dir / f"{shard_index:05d}_{key.replace('/', '_')}.{image_ext}"
            target.write_bytes(parts[image_ext])
            pairs.append(Pair(str(target), parts["txt"].decode("utf-8").strip()))
    return pairs


def webdataset_shards(base: str | Path) -> list[str] | None:
    """Shard paths when ``base`` names webdataset shards (a .tar, a brace pattern like
    ``shards/{00000..00099}.tar``, a folder of .tar); None for anything else."""
    text, base = str(base), Path(base)
    if "{" in text and text.endswith(".tar"):
        from braceexpand import braceexpand

        return list(braceexpand(text))
    if base.is_dir():
        return sorted(str(p) for p in base.glob("*.tar")) or None
    return [text] if base.suffix == ".tar" else None


def read_base(
    base: str | Path,
    extract_to: str | Path,
    separator: str | None = None,
    img_key: str = "filepath",
    caption_key: str = "caption",
) -> list[Pair]:
    """The base image-caption pairs: webdataset shards (images extracted to ``extract_to``)
    or an open_clip CSV/TSV (see :func:`read_caption_csv`)."""
    shards = webdataset_shards(base)
    if shards is not None:
        return read_webdataset(shards, extract_to)
    return read_caption_csv(base, separator, img_key, caption_key)


def read_hypernyms(path: str | Path | None) -> dict[str, str]:
    """``name,hypernym`` rows (for masking names); None: no file, every hypernym "person"."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise TrainDataError(f"hypernyms file not found: {path}")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"name", "hypernym"} <= set(rows[0]):
        raise TrainDataError(f"{path}: needs columns name,hypernym")
    return {row["name"]: row["hypernym"] for row in rows}


def parse_inject(spec: str) -> tuple[int, ...]:
    """``"1,5,10"`` -> (1, 5, 10); positive integers only."""
    try:
        counts = tuple(int(x) for x in spec.split(",") if x.strip())
    except ValueError as err:
        raise TrainDataError(f"--inject must be comma-separated integers, got {spec!r}") from err
    if not counts or min(counts) < 1:
        raise TrainDataError(f"--inject needs positive counts, got {spec!r}")
    return counts


# ---------------------------------------------------------------------------------------------
# Composition (pure)


def _name_pattern(names: Sequence[str]) -> re.Pattern[str] | None:
    if not names:
        return None
    alternatives = sorted((re.escape(n) for n in names), key=len, reverse=True)
    return re.compile(r"(?<!\w)(" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def assign_counts(
    names: Sequence[str], inject: Sequence[int], members: int, seed: int
) -> dict[str, int]:
    """Name -> number of injected pairs (0 = non-member): a seeded shuffle, counts dealt evenly."""
    if not 0 <= members <= len(names):
        raise TrainDataError(f"cannot make {members} of {len(names)} people members")
    order = np.random.default_rng([seed, 1]).permutation(len(names))
    counts = {name: 0 for name in names}
    for rank, i in enumerate(order[:members]):
        counts[names[i]] = int(inject[rank % len(inject)])
    return counts


def compose_training_set(
    base: Sequence[Pair],
    people: Sequence[Person],
    inject: Sequence[int] = DEFAULT_INJECT,
    members: int | None = None,
    attack_photos: int = 10,
    seed: int = 0,
    mask_names: bool = False,
    hypernyms: Mapping[str, str] | None = None,
    templates: Sequence[str] = CAPTION_TEMPLATES,
    familiar_non_members: bool = False,
    unrelated_photos: Sequence[str] | None = None,
) -> TrainingSet:
    """The mixed training set of the protocol; no I/O but resolving the photos' paths (open_clip
    reads absolute ones), same inputs give the same set. ``people``: a people folder's, as
    :func:`idia.people.find_people` reads it (the same people and photos an audit sees).

    - Every person's ``attack_photos`` held-out photos (a seeded choice) never enter training.
    - Members (``members`` people, default half) get ``inject`` counts dealt evenly: a member
      with count k contributes exactly k pairs, cycling through their remaining photos when k
      exceeds them, each with a seeded caption template. Non-members contribute nothing.
    - Base pairs whose image is one of the people's photos are dropped (no leak, exact counts).
    - ``mask_names``: names in all captions become a hypernym (``hypernyms[name]``, default
      "person"), as CC3M's preprocessing did, to measure that defence.
    - ``familiar_non_members``: the confound control. Non-members get the same counts dealt
      (seeded) and their name appears in that many captions, each paired with a different
      unrelated photo (``unrelated_photos``, default: the base set's images; never a photo of
      anyone under test), so that members and non-members are equally familiar as names and
      only the link between face and name separates them.
    """
    if not people:
        raise TrainDataError("no people given")
    if not inject:
        raise TrainDataError("no injection counts given")
    short = [p.name for p in people if len(p.photos) < attack_photos + 1]
    if short:
        raise TrainDataError(
            f"every person needs at least {attack_photos + 1} photos ({attack_photos} held out "
            f"for the attack, one or more to inject); too few: {', '.join(short[:10])}"
            + (f" and {len(short) - 10} more" if len(short) > 10 else "")
        )
    names = [p.name for p in people]
    members = len(people) // 2 if members is None else members
    counts = assign_counts(names, inject, members, seed)
    hypernyms = hypernyms or {}
    photos_of = {person.name: tuple(p.resolve() for p in person.photos) for person in people}
    people_photos = {str(p) for photos in photos_of.values() for p in photos}
    name_counts = dict(counts)
    unrelated: list[InjectedPair] = []
    if familiar_non_members:
        outsiders = [n for n in names if counts[n] == 0]
        dealt = assign_counts(outsiders, inject, len(outsiders), seed + 1)
        pool = [
            str(path)
            for path in (unrelated_photos or [pair.filepath for pair in base])
            if str(Path(path).resolve()) not in people_photos
        ]
        if len(pool) < max(inject):
            raise TrainDataError(
                f"familiar non-members need at least {max(inject)} unrelated photos; "
                f"{len(pool)} given"
            )
        for index, name in enumerate(outsiders):
            rng = np.random.default_rng([seed, 3, index])
            picks = rng.choice(len(pool), size=dealt[name], replace=False)
            template_ids = rng.integers(len(templates), size=dealt[name])
            shown = hypernyms.get(name, "person") if mask_names else name
            unrelated += [
                InjectedPair(name, pool[i], templates[t].format(shown))
                for i, t in zip(picks, template_ids, strict=True)
            ]
            name_counts[name] = dealt[name]

    held_out: dict[str, tuple[Path, ...]] = {}
    injected: list[InjectedPair] = []
    for index, person in enumerate(people):
        photos = photos_of[person.name]
        rng = np.random.default_rng([seed, 2, index])
        order = rng.permutation(len(photos))
        held_out[person.name] = tuple(photos[i] for i in order[:attack_photos])
        train_photos = [photos[i] for i in order[attack_photos:]]
        shown = hypernyms.get(person.name, "person") if mask_names else person.name
        template_ids = rng.integers(len(templates), size=counts[person.name])
        injected += [
            InjectedPair(
                person.name, str(train_photos[k % len(train_photos)]), templates[t].format(shown)
            )
            for k, t in enumerate(template_ids)
        ]

    kept = [pair for pair in base if str(Path(pair.filepath).resolve()) not in people_photos]
    pattern = _name_pattern(names) if mask_names else None
    if pattern is not None:
        by_key = {normalize_name(n): hypernyms.get(n, "person") for n in names}
        kept = [
            Pair(p.filepath, pattern.sub(lambda m: by_key[normalize_name(m.group(0))], p.caption))
            for p in kept
        ]
    pairs = tuple(kept) + tuple(Pair(i.filepath, i.caption) for i in (*injected, *unrelated))
    membership = tuple(
        MembershipRow(n, counts[n] > 0, counts[n], name_counts[n]) for n in names
    )
    plan = {
        "seed": seed,
        "inject": list(inject),
        "members": members,
        "non_members": len(people) - members,
        "attack_photos_per_person": attack_photos,
        "mask_names": mask_names,
        "caption_templates": list(templates),
        "base_pairs": len(base),
        "base_pairs_dropped_as_people_photos": len(base) - len(kept),
        "injected_pairs": len(injected),
        "familiar_non_members": familiar_non_members,
        "unrelated_name_pairs": len(unrelated),
        "training_pairs": len(pairs),
    }
    return TrainingSet(pairs, tuple(injected) + tuple(unrelated), membership, held_out, plan)


def write_training_set(training_set: TrainingSet, out_dir: str | Path) -> TrainingSetFiles:
    """``train.csv`` (open_clip format), ``membership.csv`` (name,member,count),
    ``injected.csv``, ``attack_people/<Name>/`` (copies of the held-out photos), ``plan.json``."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = TrainingSetFiles(
        out_dir / "train.csv",
        out_dir / "membership.csv",
        out_dir / "attack_people",
        out_dir / "injected.csv",
        out_dir / "plan.json",
    )
    _write_csv(
        files.train_csv,
        ["filepath", "caption"],
        ((p.filepath, p.caption) for p in training_set.pairs),
    )
    _write_csv(
        files.membership_csv,
        ["name", "member", "count", "name_count"],
        ((m.name, str(m.member).lower(), m.count, m.name_count) for m in training_set.membership),
    )
    _write_csv(
        files.injected_csv,
        ["name", "filepath", "caption"],
        ((i.name, i.filepath, i.caption) for i in training_set.injected),
    )
    if files.attack_people.exists():
        shutil.rmtree(files.attack_people)
    for name, photos in training_set.attack_photos.items():
        folder = files.attack_people / person_folder_name(name)
        folder.mkdir(parents=True)
        for photo in photos:
            shutil.copy2(photo, folder / photo.name)
    files.plan_json.write_text(
        json.dumps(dict(training_set.plan), indent=2) + "\n", encoding="utf-8"
    )
    return files


@dataclass(frozen=True)
class Composition:
    """How people enter a training set: the settings of :func:`compose_training_set` that
    ``idia train`` and ``idia lab`` choose (both record them in ``plan.json``)."""

    inject: tuple[int, ...] = DEFAULT_INJECT
    members: int | None = None
    attack_photos: int = 10
    seed: int = 0
    mask_names: bool = False
    hypernyms: Mapping[str, str] = field(default_factory=dict)
    familiar_non_members: bool = False


def prepare_training_set(
    base: Sequence[Pair],
    people: Sequence[Person],
    out_dir: str | Path,
    composition: Composition,
    unrelated_photos: Sequence[str] | None = None,
) -> tuple[TrainingSet, TrainingSetFiles]:
    """The first stage ``idia train`` and ``idia lab`` share: compose the training set and
    write it (see :func:`write_training_set`)."""
    training_set = compose_training_set(
        base,
        people,
        inject=composition.inject,
        members=composition.members,
        attack_photos=composition.attack_photos,
        seed=composition.seed,
        mask_names=composition.mask_names,
        hypernyms=composition.hypernyms,
        familiar_non_members=composition.familiar_non_members,
        unrelated_photos=unrelated_photos,
    )
    return training_set, write_training_set(training_set, out_dir)


def _write_csv(path: Path, header: list[str], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# ---------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainSettings:
    """open_clip_train options this launcher sets; anything else goes in ``extra_args``.

    ``predecode``: decode the training images once into memory (see
    :class:`PredecodedCsvDataset`); for sets that fit in memory at the model's image size."""

    model: str = "idia-tiny-vit"
    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 10
    wd: float = 0.1
    workers: int = 1
    device: str = "cpu"
    seed: int = 0
    precision: str = "fp32"
    save_frequency: int = 1
    log_every_n_steps: int = 10
    predecode: bool = False
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainResult:
    """A trained model: the checkpoint and config that load it, the run's log folder, and
    (after :func:`train_and_card`) its model card."""

    checkpoint: Path
    model_config: Path
    log_dir: Path
    card: Path | None = None

    @property
    def model_spec(self) -> str:
        """How the attack engine loads this model."""
        return f"open_clip:{self.model_config}:{self.checkpoint}"


def resolve_model_config(model: str) -> Path:
    """A model config JSON from a path, a bundled tiny config name, or an open_clip model name."""
    candidate = Path(model)
    if candidate.suffix == ".json":
        if not candidate.is_file():
            raise TrainDataError(f"model config not found: {model}")
        return candidate.resolve()
    bundled = CONFIG_DIR / f"{model}.json"
    if bundled.is_file():
        return bundled
    import open_clip

    builtin = Path(open_clip.__file__).parent / "model_configs" / f"{model}.json"
    if builtin.is_file():
        return builtin
    available = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
    raise TrainDataError(
        f"unknown model {model!r}: give a config JSON path, a bundled config "
        f"({', '.join(available)}) or an open_clip model name"
    )


def build_train_command(
    train_csv: str | Path,
    logs: str | Path,
    name: str,
    settings: TrainSettings,
    num_samples: int | None = None,
    nproc: int = 1,
    python: str = sys.executable,
) -> list[str]:
    """The argv that trains with open_clip_train; ``nproc`` > 1 wraps it in torchrun (DDP)."""
    config = resolve_model_config(settings.model)
    launcher = [python, "-m", "idia.lab.train"]
    if nproc > 1:
        launcher = [
            python,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={nproc}",
            "-m",
            "idia.lab.train",
        ]
    batch_size = settings.batch_size
    if num_samples is not None:  # open_clip drops the last partial batch: keep at least one
        batch_size = max(1, min(batch_size, num_samples // nproc))
    return [
        *launcher,
        "--model-config",
        str(config),
        "--model",
        config.stem,
        "--train-data",
        str(Path(train_csv).resolve()),
        "--dataset-type",
        "csv",
        "--csv-img-key",
        "filepath",
        "--csv-caption-key",
        "caption",
        "--csv-separator",
        ",",
        "--logs",
        str(Path(logs).resolve()),
        "--name",
        name,
        "--epochs",
        str(settings.epochs),
        "--batch-size",
        str(batch_size),
        "--lr",
        str(settings.lr),
        "--warmup",
        str(settings.warmup),
        "--wd",
        str(settings.wd),
        "--workers",
        str(settings.workers),
        "--device",
        settings.device,
        "--seed",
        str(settings.seed),
        "--precision",
        settings.precision,
        "--save-frequency",
        str(settings.save_frequency),
        "--log-every-n-steps",
        str(settings.log_every_n_steps),
        *(["--predecode"] if settings.predecode else []),
        *settings.extra_args,
    ]


def ensure_new_run(logs: str | Path, name: str) -> Path:
    """The run's log folder; an error if a run of that name exists (open_clip would refuse)."""
    log_dir = Path(logs).resolve() / name
    if (log_dir / "out.log").exists():
        raise TrainDataError(
            f"a run named {name!r} already exists in {log_dir.parent}; choose another name or --out"
        )
    return log_dir


def train_clip(
    train_csv: str | Path,
    logs: str | Path,
    name: str,
    settings: TrainSettings,
    nproc: int = 1,
    on_line: Callable[[str], None] | None = print,
) -> TrainResult:
    """Train with open_clip_train in a subprocess, streaming its log lines to ``on_line``.

    Returns the final checkpoint (``logs/name/checkpoints/epoch_<E>.pt``) and the model
    config JSON, which together load with open_clip.
    """
    train_csv = Path(train_csv)
    if not train_csv.is_file():
        raise TrainDataError(f"training CSV not found: {train_csv}")
    with train_csv.open(encoding="utf-8", newline="") as f:
        num_samples = sum(1 for _ in csv.reader(f)) - 1
    if num_samples < 1:
        raise TrainDataError(f"{train_csv} has no training pairs")
    log_dir = ensure_new_run(logs, name)
    command = build_train_command(train_csv, logs, name, settings, num_samples, nproc)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    tail: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            tail = (tail + [line])[-15:]
            if on_line is not None:
                on_line(line)
        returncode = process.wait()
    checkpoint = log_dir / "checkpoints" / f"epoch_{settings.epochs}.pt"
    if returncode != 0 or not checkpoint.is_file():
        raise TrainingFailed(
            f"open_clip_train failed (exit code {returncode}); last output:\n" + "\n".join(tail)
        )
    config = resolve_model_config(settings.model)
    run_config = log_dir / config.name  # the run folder is self-contained: config beside weights
    shutil.copyfile(config, run_config)
    return TrainResult(checkpoint, run_config, log_dir)


@dataclass(frozen=True)
class TrainingCard:
    """What a trained model's card says beyond the training (see
    :func:`idia.models.card.write_training_card`): its name, the command that made it, how
    photos are to be prepared, where the membership table, the held-out people and (for a
    lab) the audit run lie, and whether the people are synthetic."""

    name: str
    made_by: str
    crop: str
    membership: Path
    people: Path
    audit_run: Path | None = None
    synthetic: bool = False


def train_and_card(
    files: TrainingSetFiles,
    logs: str | Path,
    run_name: str,
    settings: TrainSettings,
    card: TrainingCard,
    *,
    nproc: int = 1,
    model_dir: str | Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> TrainResult:
    """The second stage ``idia train`` and ``idia lab`` share: train on the written set
    (:func:`train_clip`) and write the model's card beside the checkpoint. With
    ``model_dir`` (a new folder), the config and checkpoint (as ``checkpoint.pt``) are first
    copied there and the card, written beside the copy, names the original."""
    result = train_clip(files.train_csv, logs, run_name, settings, nproc, on_line=on_line)
    copied_from = None
    if model_dir is not None:
        model_dir = Path(model_dir)
        model_dir.mkdir()
        copied_from = result.checkpoint
        result = replace(
            result,
            model_config=shutil.copyfile(result.model_config,
                                         model_dir / result.model_config.name),
            checkpoint=shutil.copyfile(result.checkpoint, model_dir / "checkpoint.pt"),
        )
    written = write_training_card(
        result.checkpoint, result.model_config, files.plan_json, name=card.name,
        made_by=card.made_by, crop=card.crop, membership=card.membership, people=card.people,
        audit_run=card.audit_run, copied_from=copied_from, epochs=settings.epochs,
        **({"synthetic": True} if card.synthetic else {}),
    )
    return replace(result, card=written)


def load_trained_model(model_config: str | Path, checkpoint: str | Path):
    """(model, preprocess, tokenizer) from a config JSON and an open_clip_train checkpoint."""
    import open_clip

    model_config = Path(model_config)
    open_clip.add_model_config(model_config)
    model, _, preprocess = open_clip.create_model_and_transforms(
        model_config.stem, pretrained=str(checkpoint)
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(model_config.stem)


class PredecodedCsvDataset:
    """open_clip_train's ``CsvDataset`` with every image decoded once, not once per epoch.

    Same constructor and items as ``open_clip_train.data.CsvDataset`` (image through the
    training transform, caption tokens), so open_clip_train's loader, sampler, shuffling and
    augmentation are untouched. Each distinct image file is decoded once into one uint8 array
    (images, ``image_size`` x ``image_size`` x RGB); captions are tokenized once. An image
    already of that size (as the lab renders them) is stored as decoded, so training sees
    exactly the pixels it would have read from disk; any other is first resized (short side,
    bicubic) and centre-cropped to that size, so the random crop then samples from that square
    instead of the full photo.
    """

    def __init__(
        self,
        input_filename: str,
        transforms: Callable,
        img_key: str,
        caption_key: str,
        sep: str = "\t",
        tokenizer: Callable | None = None,
        *,
        image_size: int,
    ) -> None:
        import logging
        import time

        start = time.perf_counter()
        frame = pd.read_csv(input_filename, sep=sep)
        paths = frame[img_key].astype(str).tolist()
        slots: dict[str, int] = {}
        self.slot = np.array([slots.setdefault(p, len(slots)) for p in paths], dtype=np.int64)
        self.pixels = np.empty((len(slots), image_size, image_size, 3), dtype=np.uint8)
        for path, slot in slots.items():
            self.pixels[slot] = decode_square(path, image_size)
        if tokenizer is None:
            raise TrainDataError("the pre-decoded dataset needs open_clip_train's tokenizer")
        self.tokens = tokenizer([str(c) for c in frame[caption_key].tolist()])
        self.transforms = transforms
        logging.info(
            "idia: pre-decoded %d images (%d distinct) at %dx%d and tokenized their captions "
            "in %.1f s", len(paths), len(slots), image_size, image_size,
            time.perf_counter() - start,
        )

    def __len__(self) -> int:
        return len(self.slot)

    def __getitem__(self, idx: int):
        from PIL import Image

        return self.transforms(Image.fromarray(self.pixels[self.slot[idx]])), self.tokens[idx]


def decode_square(path: str | Path, size: int) -> np.ndarray:
    """An image file as ``size`` x ``size`` x 3 uint8: as is when it has that size, else
    resized (short side, bicubic) and centre-cropped."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
    if image.size != (size, size):
        scale = size / min(image.size)
        resized = (max(size, round(image.width * scale)), max(size, round(image.height * scale)))
        image = image.resize(resized, Image.Resampling.BICUBIC)
        left, top = (resized[0] - size) // 2, (resized[1] - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8)


def _model_image_size(model_name: str) -> int:
    import open_clip

    config = open_clip.get_model_config(model_name)
    if config is None:
        raise TrainDataError(f"--predecode: no model config for {model_name!r}")
    size = config["vision_cfg"]["image_size"]
    if isinstance(size, (list, tuple)):
        if size[0] != size[-1]:
            raise TrainDataError(f"--predecode needs a square image size, {model_name} has {size}")
        size = size[0]
    return int(size)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m idia.lab.train --model-config CFG.json [--predecode] [open_clip_train
    options]``.

    Registers each ``--model-config`` with open_clip (so ``--model <stem>`` resolves); with
    ``--predecode``, serves CSV training data through :class:`PredecodedCsvDataset`; then runs
    ``open_clip_train.main``. Exits non-zero when open_clip_train reports an error by return
    value (it does so for "experiment already exists").
    """
    args = list(sys.argv[1:] if argv is None else argv)
    import open_clip

    while "--model-config" in args:
        i = args.index("--model-config")
        open_clip.add_model_config(args[i + 1])
        del args[i : i + 2]
    if "--predecode" in args:
        args.remove("--predecode")
        import functools

        import open_clip_train.data

        model = args[args.index("--model") + 1] if "--model" in args else "RN50"
        size = _model_image_size(model)  # open_clip_train's default model is RN50
        open_clip_train.data.CsvDataset = functools.partial(  # read by get_csv_dataset
            PredecodedCsvDataset, image_size=size
        )
    from open_clip_train.main import main as open_clip_main

    result = open_clip_main(args)
    return 1 if isinstance(result, int) and result < 0 else 0


if __name__ == "__main__":
    sys.exit(main())
