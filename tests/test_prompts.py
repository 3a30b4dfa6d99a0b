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

# The PROMPTS list of the paper's own code (D0miH/does-clip-know-my-face,
# laion400m_experiments/02_idia_laion_multiprompt.ipynb and cc3m_experiments/
# 03_idia_*_multi_prompt.ipynb, identical in both), with '{0}' written '{}', in its order.
PAPER_CODE_PROMPTS = (
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


def test_the_21_templates_of_the_paper():
    """Every string and the order (indices select templates: --templates 0,2,5)."""
    assert PAPER_TEMPLATES == PAPER_CODE_PROMPTS
    assert len(set(PAPER_TEMPLATES)) == 21


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
