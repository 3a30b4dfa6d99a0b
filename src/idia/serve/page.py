"""The Gradio page of ``idia web``: the layout of a :class:`~idia.serve.demo.WebDemo` and its
launch, offline (no analytics, no share link, system fonts). Gradio is imported only here,
when the page is built or served."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from idia.serve.demo import MAX_NAMES, MIN_NAMES, WebDemo
from idia.serve.markdown import NO_MODEL_HELP, TABLE_HEADERS, examples_markdown
from idia.serve.uploads import (
    UNCHECKED_UPLOAD_AGE_S,
    UNCHECKED_UPLOAD_SWEEP_S,
    private_upload_dir,
)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no calls home


def create_web_app(demo: WebDemo, default_model: str | None = None) -> Any:
    """The Gradio page for ``demo`` (a ``gradio.Blocks``). ``default_model``: the name of the
    model chosen at first (default: the first offered). Gradio's uploads and cache go to this
    process's private folder (:func:`private_upload_dir`), whose uploads ``demo`` deletes."""
    demo.upload_dir = private_upload_dir()
    import gradio as gr

    choices = list(demo.models)
    if default_model is not None and default_model not in demo.models:
        raise ValueError(f"the default model {default_model!r} is not among the offered ones")
    default_model = default_model or (choices[0] if choices else None)
    with gr.Blocks(
        title="Does this model know my face?",
        analytics_enabled=False,
        delete_cache=(UNCHECKED_UPLOAD_SWEEP_S, UNCHECKED_UPLOAD_AGE_S),
    ) as page:
        gr.Markdown(
            "# Does this model know my face?\n"
            "The identity inference attack from *Does CLIP Know My Face?*: upload a few photos "
            "of a person, type their name, and find out whether a CLIP-style model has learned "
            "to connect the two.\n\n" + demo.privacy_markdown(),
            elem_id="privacy",
        )
        # Built first and placed below: the examples at the top need them.
        model = gr.Dropdown(
            choices=choices,
            value=default_model,
            allow_custom_value=False,
            label="Model",
            info="The models this server offers.",
            elem_id="model",
            render=False,
        )
        name = gr.Textbox(
            label="Full name", placeholder="e.g. Ada Lovelace", elem_id="name", render=False
        )
        photos = gr.File(
            file_count="multiple",
            file_types=["image"],
            type="filepath",
            label="Photos of the person (drag and drop several at once)",
            elem_id="photos",
            render=False,
        )
        verdict = gr.Markdown(elem_id="verdict", render=False)
        crops = gr.HTML(label="Face crops the model saw", elem_id="crops", render=False)
        table = gr.Dataframe(
            headers=TABLE_HEADERS,
            interactive=False,
            wrap=True,
            label="The name each template picked",
            elem_id="templates",
            render=False,
        )
        explanation = gr.Markdown(elem_id="explanation", render=False)
        for label, lab in demo.labs.items():
            gr.Markdown(examples_markdown(label, lab), elem_id="examples-help")
            if not lab.examples:  # a lab of real people: their photos are not shown
                continue
            gr.Examples(
                examples=[[label, example.name] for example in lab.examples],
                inputs=[model, name],
                outputs=[verdict, crops, table, explanation, photos],
                fn=lambda chosen, person: demo.run_example(chosen, person).outputs(),
                run_on_click=True,
                cache_examples=False,
                example_labels=[example.label for example in lab.examples],
                label=f"Examples: people of {label}'s lab, and what its audit found",
                elem_id="examples",
                api_name="example",
            )
        with gr.Row():
            with gr.Column(scale=1):
                model.render()
                if not choices:
                    gr.Markdown(NO_MODEL_HELP, elem_id="model-help")
                name.render()
                photos.render()
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    num_names = gr.Slider(
                        MIN_NAMES,
                        max(MAX_NAMES, demo.num_names),
                        value=demo.num_names,
                        step=10,
                        label="Candidate names",
                    )
                    seed = gr.Number(value=0, precision=0, label="Seed for the decoy names")
                    crop = gr.Radio(
                        [("crop the face", "face"), ("whole photo", "none")],
                        value=demo.default_crop(default_model),
                        label="What the model sees",
                        info="The default is what the model's card says its photos are.",
                        elem_id="crop",
                    )
                run = gr.Button("Run the attack", variant="primary", elem_id="run")
            with gr.Column(scale=1):
                verdict.render()
                crops.render()
                table.render()
        explanation.render()
        model.change(
            lambda chosen: gr.Radio(value=demo.default_crop(chosen)),
            inputs=[model],
            outputs=[crop],
            api_visibility="private",
        )

        def attack(*inputs: Any) -> tuple:
            return demo.run(*inputs).outputs()

        run.click(
            attack,
            inputs=[model, name, photos, num_names, seed, crop],
            outputs=[verdict, crops, table, explanation, photos],
            api_name="attack",
            # Gradio's own preprocessing would leave an empty temporary file per photo behind;
            # WebDemo.run takes the raw values and checks every one of them itself.
            preprocess=False,
        )
    return page


def launch_web(
    page: Any,
    host: str = "127.0.0.1",
    port: int = 7860,
    block: bool = True,
    auth: Callable[[str, str], bool] | None = None,
) -> tuple[Any, str, str]:
    """Serve the page offline (system fonts, no analytics, no share link, no SSR), behind a
    login when ``auth`` is given. Blocking, SIGTERM exits like Ctrl+C, so the upload folder is
    removed at exit either way."""
    import gradio as gr

    if block and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    theme = gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )
    return page.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        theme=theme,
        max_file_size="50mb",
        auth=auth,
        auth_message="This page is for invited people only." if auth else None,
        prevent_thread_lock=not block,
        quiet=not block,
    )
