"""The paper's 21 prompt templates, and a user's own templates from a file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from idia.errors import IdiaError

PAPER_TEMPLATES: tuple[str, ...] = (
    "{}",
    "an image of {}",
    "a photo of {}",
    "{} on a photo",
    "a photo of a person named {}",
    "a person named {}",
    "a man named {}",
    "a woman named {}",
    "the name of the person is {}",
    "a photo of a person with the name {}",
    "{} at a gala",
    "a photo of the celebrity {}",
    "actor {}",
    "actress {}",
    "a colored photo of {}",
    "a black and white photo of {}",
    "a cool photo of {}",
    "a cropped photo of {}",
    "a cropped image of {}",
    "{} in a suit",
    "{} in a dress",
)


class TemplateError(IdiaError, ValueError):
    """A template is malformed or a selection names no known template."""


def validate_templates(templates: Sequence[str]) -> tuple[str, ...]:
    """Each template holds the name slot ``{}`` exactly once; no duplicates; at least one."""
    if not templates:
        raise TemplateError("no prompt templates given")
    seen: set[str] = set()
    for template in templates:
        if not template.count("{}") == template.count("{") == template.count("}") == 1:
            raise TemplateError(
                f"template {template!r} must contain the name slot '{{}}' exactly once "
                "and no other braces"
            )
        if template in seen:
            raise TemplateError(f"template {template!r} is listed twice")
        seen.add(template)
    return tuple(templates)


def load_templates(path: str | Path) -> tuple[str, ...]:
    """Templates from a text file, one per line; blank lines and ``#`` comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise TemplateError(f"templates file not found: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return validate_templates([line for line in lines if line and not line.startswith("#")])


def select_templates(selection: str | None) -> tuple[str, ...]:
    """The paper's templates, all (None) or a comma-separated list of 0-based indices."""
    if not selection:
        return PAPER_TEMPLATES
    try:
        indices = [int(part) for part in selection.split(",")]
    except ValueError as err:
        raise TemplateError(
            f"template selection {selection!r} must be comma-separated indices 0..20"
        ) from err
    bad = [i for i in indices if not 0 <= i < len(PAPER_TEMPLATES)]
    if bad:
        raise TemplateError(f"template indices {bad} are outside 0..{len(PAPER_TEMPLATES) - 1}")
    return validate_templates([PAPER_TEMPLATES[i] for i in indices])


def choose_templates(choice: str | None) -> tuple[str, ...]:
    """Templates as a user names them: a file of templates, indices like ``0,2,5`` of the
    paper's, or None for all 21."""
    if not choice:
        return PAPER_TEMPLATES
    if Path(choice).exists():
        return load_templates(choice)
    if all(part.strip().isdigit() for part in choice.split(",")):
        return select_templates(choice)
    raise TemplateError(f"--templates {choice!r} is neither a file nor indices like 0,2,5")


def render_prompts(templates: Sequence[str], names: Sequence[str]) -> list[str]:
    """All prompts, template-major: prompt ``t * len(names) + k`` is template t with name k."""
    return [template.replace("{}", name) for template in templates for name in names]
