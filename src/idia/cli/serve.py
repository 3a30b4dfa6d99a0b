"""``idia serve`` and ``idia web`` (FastAPI, uvicorn and Gradio load only when used)."""

from __future__ import annotations

import importlib.util

import typer

from idia.cli.errors import fail, warn
from idia.cli.options import (
    LOOPBACK,
    WEB_AUTH_ENV,
    ApiKeyOpt,
    BodyTimeoutOpt,
    DeviceOpt,
    HostOpt,
    MaxBodyMbOpt,
    MaxConnectionsOpt,
    MaxImageKbOpt,
    MaxImagePixelsOpt,
    MaxImagesOpt,
    MaxRequestPixelsOpt,
    MaxTextsOpt,
    MaxTotalTextCharsOpt,
    ModelOpt,
    NumNamesOpt,
    OfferedModelsOptions,
    PageAccessOptions,
    PortOpt,
    ServeApiKeyOpt,
    ServedNameOpt,
    Top1OnlyOpt,
    WebReferenceOpt,
    expand_option_groups,
)
from idia.face_reference import DEFAULT_REFERENCE

app = typer.Typer()


@app.command()
def serve(
    model: ModelOpt,
    name: ServedNameOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    top1_only: Top1OnlyOpt = False,
    api_key: ServeApiKeyOpt = None,
    device: DeviceOpt = None,
    max_images: MaxImagesOpt = 64,
    max_image_kb: MaxImageKbOpt = 512,
    max_image_pixels: MaxImagePixelsOpt = 2048**2,
    max_request_pixels: MaxRequestPixelsOpt = 2**24,
    max_texts: MaxTextsOpt = 32_768,
    max_total_text_chars: MaxTotalTextCharsOpt = 2**20,
    max_body_mb: MaxBodyMbOpt = None,
    body_timeout: BodyTimeoutOpt = 60.0,
    max_connections: MaxConnectionsOpt = 64,
) -> None:
    """Serve a model as a zero-shot classification API: images and texts in, best text out."""
    limits_given = (max_images, max_image_kb, max_image_pixels, max_request_pixels, max_texts,
                    max_total_text_chars, max_connections)
    if min(limits_given) < 1 or body_timeout <= 0 or (max_body_mb is not None and max_body_mb <= 0):
        fail("the limits must be positive")
    import uvicorn

    from idia.models import load_model
    from idia.serve.api import Limits, create_app
    from idia.serve.catalog import model_label

    limits = Limits(
        max_images=max_images,
        max_image_bytes=max_image_kb * 2**10,
        max_image_pixels=max_image_pixels,
        max_request_pixels=max_request_pixels,
        max_texts=max_texts,
        max_total_text_chars=max_total_text_chars,
        max_body_bytes=0 if max_body_mb is None else int(max_body_mb * 2**20),
        body_timeout_s=body_timeout,
    )
    shown = name or model_label(model)
    loaded = load_model(model, device=device, progress=False)
    service = create_app(loaded, top1_only=top1_only, api_key=api_key, limits=limits, name=shown)
    if host not in LOOPBACK and not api_key:
        warn(f"listening on {host} without --api-key: anyone who can reach it can query the model")
    typer.echo(
        f"serving {shown} (identity {loaded.identity[:12]}) at http://{host}:{port} "
        f"({'top-1 only' if top1_only else 'with scores'}; bodies up to "
        f"{limits.max_body_bytes / 2**20:.1f} MiB; API docs at /docs)",
        err=True,
    )
    uvicorn.run(service, host=host, port=port, limit_concurrency=max_connections, log_level="info")


@app.command()
@expand_option_groups
def web(
    models: OfferedModelsOptions = OfferedModelsOptions(),
    access: PageAccessOptions = PageAccessOptions(),
    num_names: NumNamesOpt = 1000,
    device: DeviceOpt = None,
    api_key: ApiKeyOpt = None,
    reference: WebReferenceOpt = DEFAULT_REFERENCE,
) -> None:
    """A web page where anyone (or, with a login, invited people) can check whether a model
    knows a face (Gradio)."""
    if importlib.util.find_spec("gradio") is None:
        fail("the web page needs Gradio: pip install 'idia[web]'")
    from idia.serve.demo import WebDemo
    from idia.serve.logins import login_check
    from idia.serve.page import create_web_app, launch_web

    offered, preload = models.offered()
    logins = access.logins()
    if not offered:
        warn("no model given and none found; the page will say how to get one. Train one with "
             "'idia lab', or pass --model SPEC.")
    if access.host not in LOOPBACK:
        if logins:
            warn(f"listening on {access.host}: logins cross the network in clear unless a TLS "
                 "proxy fronts the page")
        else:
            warn(f"listening on {access.host} without --auth-file or ${WEB_AUTH_ENV}: anyone "
                 "who can reach it can upload photos and query the models")
    demo = WebDemo(offered, num_names=num_names, device=device, api_key=api_key,
                   public_reference=reference)
    for label in preload:
        typer.echo(f"loading {label}", err=True)
        # fail now, and do the work every check repeats now, not at the first click
        demo.prepare(label, log=lambda line: typer.echo(line, err=True))
    typer.echo(
        f"open http://{access.host}:{access.port} in a browser (Ctrl+C stops); models offered: "
        f"{', '.join(offered) or 'none'}" + ("; login required" if logins else ""),
        err=True,
    )
    launch_web(create_web_app(demo), host=access.host, port=access.port,
               auth=login_check(logins) if logins else None)
