"""``idia serve``: a CLIP model behind a zero-shot classification API, as a provider would
expose it. Clients send images and candidate texts and get back the best text per image (and,
unless the provider hides them, the scores); weights and embeddings never leave the server.

``POST /v1/zero-shot`` takes JSON ``{"images": [base64 PNG/JPEG, ...], "text_groups":
[[text, ...], ...]}`` (or ``"texts": [...]`` for one group) and answers ``{"best": [[index per
group] per image], "scores": [[[score per text] per group] per image] | null}``. The answer is
computed exactly as :class:`idia.zeroshot.EmbeddingZeroShot` computes it in-process (same
encoders, same batches for the texts of one request, same argmax with ties to the first index),
so a closed-box attack gets the in-process answers. ``GET /info`` names the model (its identity
keys caches and run folders), its limits and whether scores are revealed; ``GET /health`` is
for load balancers. Requests beyond the limits get a 413, malformed ones a 400 or 422, a
missing or wrong API key a 401; internal errors a bare 500, never a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import io
import json
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from idia import __version__
from idia.faces import to_rgb
from idia.models.base import ClosedBoxModel, EmbeddingModel, ZeroShotResult
from idia.zeroshot import EmbeddingZeroShot

API_VERSION = "1"
IMAGE_FORMATS = ("PNG", "JPEG")


@dataclass(frozen=True)
class Limits:
    """What one request may carry. The defaults fit one person's attack in one request
    (21 templates x 1,000 names, dozens of face crops)."""

    max_body_bytes: int = 64 * 2**20
    max_images: int = 64
    max_texts: int = 32_768
    max_text_chars: int = 1_000
    max_image_pixels: int = 4096 * 4096


class LimitsInfo(BaseModel):
    max_body_bytes: int
    max_images: int
    max_texts: int
    max_text_chars: int
    max_image_pixels: int


class Info(BaseModel):
    api_version: str
    server_version: str
    name: str = Field(description="The model's name, e.g. its spec.")
    identity: str = Field(description="Digest of weights, architecture and preprocessing.")
    top1_only: bool = Field(description="True when only the best text is revealed.")
    logit_scale: float | None = Field(description="CLIP's temperature, when scores are revealed.")
    limits: LimitsInfo


class ZeroShotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: list[str] = Field(
        description="Base64 PNG or JPEG images (data: URLs accepted), classified as decoded."
    )
    text_groups: list[list[str]] | None = Field(
        default=None, description="Groups of candidate texts, all of the same size."
    )
    texts: list[str] | None = Field(default=None, description="One group of candidate texts.")


class ZeroShotAnswer(BaseModel):
    best: list[list[int]] = Field(description="Per image and group, the index of the best text.")
    scores: list[list[list[float]]] | None = Field(
        description="Per image, group and text, the image-text cosine similarity; null when "
        "the provider reveals only the best text."
    )


class Health(BaseModel):
    status: str


class ErrorDetail(BaseModel):
    detail: str


class ZeroShotService:
    """One model answering zero-shot questions one request at a time.

    The prompt embeddings of recently seen text groups are kept (up to ``max_cached_texts``
    texts), so a client sending photo after photo with the same candidates pays for the text
    tower once, and memory stays bounded however many different candidate sets arrive.
    """

    def __init__(
        self, model: EmbeddingModel | ClosedBoxModel, max_cached_texts: int = 200_000
    ) -> None:
        if not isinstance(model, EmbeddingModel | ClosedBoxModel):
            raise TypeError(f"{type(model).__name__} is not a model idia can serve")
        self.model = model
        self.max_cached_texts = max_cached_texts
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, tuple[EmbeddingZeroShot, int]] = OrderedDict()

    @property
    def logit_scale(self) -> float | None:
        scale = getattr(self.model, "logit_scale", None)
        return None if scale is None else float(scale)

    def answer(self, images: Sequence[Image.Image], groups: list[list[str]]) -> ZeroShotResult:
        with self._lock:
            if not isinstance(self.model, EmbeddingModel):
                return self.model.zero_shot(images, groups)
            return self._classifier(groups).zero_shot(images, groups)

    def _classifier(self, groups: list[list[str]]) -> EmbeddingZeroShot:
        key = hashlib.blake2b(json.dumps(groups).encode(), digest_size=16).hexdigest()
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key][0]
        classifier = EmbeddingZeroShot(self.model)
        self._recent[key] = (classifier, sum(len(g) for g in groups))
        while len(self._recent) > 1 and (
            sum(size for _, size in self._recent.values()) > self.max_cached_texts
        ):
            self._recent.popitem(last=False)
        return classifier


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with a 413 before any of it is parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = JSONResponse(
            {"detail": f"request body over the limit of {self.max_bytes:,} bytes"}, 413
        )
        declared = dict(scope["headers"]).get(b"content-length")
        try:
            if declared is not None and int(declared) > self.max_bytes:
                await too_large(scope, receive, send)
                return
        except ValueError:
            await JSONResponse({"detail": "invalid Content-Length"}, 400)(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


def decode_image(data: str, index: int, max_pixels: int) -> Image.Image:
    """The RGB image a client sent, exactly as encoded (EXIF rotation applied, alpha on white)."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise HTTPException(400, f"images[{index}] is not valid base64") from err
    try:
        image = Image.open(io.BytesIO(raw))
        if image.format not in IMAGE_FORMATS:
            raise HTTPException(
                400, f"images[{index}] is {image.format}; send PNG (lossless) or JPEG"
            )
        if image.width * image.height > max_pixels:
            raise HTTPException(
                413,
                f"images[{index}] has {image.width}x{image.height} pixels, over the limit of "
                f"{max_pixels:,}",
            )
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as err:
        raise HTTPException(413, f"images[{index}] is too large to decode") from err
    except UnidentifiedImageError as err:
        raise HTTPException(400, f"images[{index}] is not a PNG or JPEG image") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise HTTPException(400, f"images[{index}] is corrupt or truncated") from err


def check_texts(groups: list[list[str]], limits: Limits) -> None:
    if not groups or not groups[0]:
        raise HTTPException(422, "send at least one text group with at least one text")
    sizes = {len(group) for group in groups}
    if len(sizes) > 1:
        raise HTTPException(422, f"text groups must have the same size, got {sorted(sizes)}")
    total = len(groups) * len(groups[0])
    if total > limits.max_texts:
        raise HTTPException(413, f"{total:,} texts, over the limit of {limits.max_texts:,}")
    for g, group in enumerate(groups):
        for t, text in enumerate(group):
            if len(text) > limits.max_text_chars:
                raise HTTPException(
                    413,
                    f"text_groups[{g}][{t}] has {len(text):,} characters, over the limit of "
                    f"{limits.max_text_chars:,}",
                )


def create_app(
    model: EmbeddingModel | ClosedBoxModel,
    top1_only: bool = False,
    api_key: str | None = None,
    limits: Limits | None = None,
    max_cached_texts: int = 200_000,
) -> FastAPI:
    """The zero-shot API for ``model``. ``top1_only``: reveal only the best text, never scores.
    ``api_key``: when set, /info and /v1/zero-shot need it (Bearer token or X-API-Key)."""
    limits = limits or Limits()
    service = ZeroShotService(model, max_cached_texts)
    scale = None if top1_only else service.logit_scale
    info = Info(
        api_version=API_VERSION,
        server_version=__version__,
        name=model.name,
        identity=model.identity,
        top1_only=top1_only,
        logit_scale=scale,
        limits=LimitsInfo(**asdict(limits)),
    )
    app = FastAPI(
        title="idia zero-shot classification",
        version=API_VERSION,
        description="A CLIP-style model as a closed box: images and candidate texts in, the "
        "best text (and optionally scores) out.",
    )
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token.")
    key_header = APIKeyHeader(name="X-API-Key", auto_error=False)

    def require_key(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        header: str | None = Depends(key_header),
    ) -> None:
        given = credentials.credentials if credentials else header
        if not (given and api_key and hmac.compare_digest(given.encode(), api_key.encode())):
            raise HTTPException(
                401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"}
            )

    protected = [Depends(require_key)] if api_key else []
    errors = {
        code: {"model": ErrorDetail, "description": text}
        for code, text in (
            (400, "Undecodable image"),
            (401, "Missing or wrong API key"),
            (413, "Over a limit"),
            (422, "Malformed request"),
        )
    }

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in exc.errors()[:5]
        ]
        return JSONResponse({"detail": "; ".join(problems)}, 422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this reply, so the server logs the traceback; not the client.
        return JSONResponse({"detail": "internal server error"}, 500)

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok")

    @app.get("/info", response_model=Info, dependencies=protected, responses=errors)
    def get_info() -> Info:
        return info

    @app.post(
        "/v1/zero-shot", response_model=ZeroShotAnswer, dependencies=protected, responses=errors
    )
    def zero_shot(request: ZeroShotRequest) -> Response:
        if (request.text_groups is None) == (request.texts is None):
            raise HTTPException(422, "send either 'text_groups' or 'texts'")
        groups = request.text_groups if request.text_groups is not None else [request.texts]
        if not request.images:
            raise HTTPException(422, "send at least one image")
        if len(request.images) > limits.max_images:
            raise HTTPException(
                413, f"{len(request.images)} images, over the limit of {limits.max_images}"
            )
        check_texts(groups, limits)
        images = [
            decode_image(data, i, limits.max_image_pixels) for i, data in enumerate(request.images)
        ]
        result = service.answer(images, groups)
        scores = None if top1_only or result.scores is None else result.scores.tolist()
        body = {"best": result.best.tolist(), "scores": scores}
        return Response(json.dumps(body), media_type="application/json")

    return app


@contextlib.contextmanager
def running_server(app: ASGIApp, host: str = "127.0.0.1", timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` from a background thread on a free port; yields its base URL and always
    shuts it down (for tests, benchmarks and notebooks)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {host}:{port} did not start")
            time.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
