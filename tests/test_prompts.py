"""The paper's 21 templates and user template files."""

from __future__ import annotations

import pytest

from idia.prompts import (
    PAPER_TEMPLATES,
    TemplateError,
    load_templates,
    render_prompts,
    select_templates,
)


def test_the_21_templates_of_the_paper():
    assert len(PAPER_TEMPLATES) == 21 == len(set(PAPER_TEMPLATES))
    assert PAPER_TEMPLATES[0] == "{}" and "actress {}" in PAPER_TEMPLATES


def test_render_is_template_major():
    prompts = render_prompts(["a photo of {}", "{}"], ["Ann", "Bo {x}"])
    assert prompts == ["a photo of Ann", "a photo of Bo {x}", "Ann", "Bo {x}"]


def test_select_and_load(tmp_path):
    assert select_templates("0,2") == ("{}", "a photo of {}")
    with pytest.raises(TemplateError, match="outside"):
        select_templates("0,21")
    path = tmp_path / "t.txt"
    path.write_text("# mine\nportrait of {}\n\n{} smiling\n")
    assert load_templates(path) == ("portrait of {}", "{} smiling")
    path.write_text("no slot here\n")
    with pytest.raises(TemplateError, match="exactly once"):
        load_templates(path)
    path.write_text("{} and {}\n")
    with pytest.raises(TemplateError):
        load_templates(path)
