"""``idia serve`` and ``idia web`` (thin CLI; FastAPI, uvicorn and Gradio load only when used)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from idia.models import SPEC_HELP

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_command(
    model: Annotated[str, typer.Option("--model", "-m", help=f"Model spec: {SPEC_HELP}.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    top1_only: Annotated[
        bool, typer.Option("--top1-only", help="Reveal only the best text, never scores.")
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="IDIA_SERVE_API_KEY", help="Require this key (Bearer or X-API-Key)."),
    ] = None,
    device: Annotated[str | None, typer.Option(help="'cpu', 'cuda'; default: auto.")] = None,
    max_images: Annotated[int, typer.Option(help="Images per request at most.")] = 64,
    max_texts: Annotated[int, typer.Option(help="Texts per request at most.")] = 32_768,
    max_body_mb: Annotated[float, typer.Option(help="Request body size limit, in MiB.")] = 64.0,
    max_image_pixels: Annotated[int, typer.Option(help="Pixels per image at most.")] = 4096**2,
    max_connections: Annotated[
        int, typer.Option(help="Connections at once; more get 503 (clients retry).")
    ] = 64,
) -> None:
    """Serve a model as a zero-shot classification API: images and texts in, best text out."""
    from idia.cli import USER_ERRORS, fail

    if min(max_images, max_texts, max_image_pixels, max_connections) < 1 or max_body_mb <= 0:
        fail("the limits must be positive")
    try:
        import uvicorn

        from idia.models import load_model
        from idia.serve.api import Limits, create_app

        loaded = load_model(model, device=device, progress=False)
        limits = Limits(
            max_body_bytes=int(max_body_mb * 2**20),
            max_images=max_images,
            max_texts=max_texts,
            max_image_pixels=max_image_pixels,
        )
        app = create_app(loaded, top1_only=top1_only, api_key=api_key, limits=limits)
    except USER_ERRORS as err:
        fail(str(err))
    if host not in LOOPBACK and not api_key:
        typer.secho(
            f"warning: listening on {host} without --api-key: anyone who can reach it can query "
            "the model",
            err=True,
            fg=typer.colors.YELLOW,
        )
    typer.echo(
        f"serving {loaded.name} (identity {loaded.identity[:12]}) at http://{host}:{port} "
        f"({'top-1 only' if top1_only else 'with scores'}; API docs at /docs)",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, limit_concurrency=max_connections, log_level="info")


def web_command(
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help=f"Model spec (default: the newest lab model): {SPEC_HELP}."
        ),
    ] = None,
    lab_dir: Annotated[
        Path | None,
        typer.Option(help="Where to look for trained models (default: ./lab, else ./)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7860,
    num_names: Annotated[int, typer.Option(help="Candidate names (real + decoys).")] = 1000,
    device: Annotated[str | None, typer.Option(help="'cpu', 'cuda'; default: auto.")] = None,
) -> None:
    """A web page where anyone can check whether a model knows a face (Gradio)."""
    from idia.cli import USER_ERRORS, fail

    if importlib.util.find_spec("gradio") is None:
        fail("the web page needs Gradio: pip install 'idia[web]'")
    from idia.serve.web import WebDemo, create_web_app, find_local_models, launch_web

    if lab_dir is not None and not lab_dir.is_dir():
        fail(f"--lab-dir {lab_dir} is not a folder")
    roots = [lab_dir or (Path("lab") if Path("lab").is_dir() else Path("."))]
    found = find_local_models(roots)
    default = model or (found[0] if found else None)
    if default is None:
        typer.secho(
            "note: no model given and none found under "
            f"{', '.join(str(r) for r in roots)}; the page will ask for one. Train one with "
            "'idia lab', or pass --model SPEC.",
            err=True,
            fg=typer.colors.YELLOW,
        )
    demo = WebDemo(found, num_names=num_names, device=device)
    if default is not None:
        typer.echo(f"loading {default}", err=True)
        try:
            demo.model(default)  # fail now, not at the first visitor's click
        except USER_ERRORS as err:
            fail(str(err))
    typer.echo(f"open http://{host}:{port} in a browser (Ctrl+C stops)", err=True)
    launch_web(create_web_app(demo, default), host=host, port=port)
