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
missing or wrong API key a 401, a body that does not arrive in time a 408; internal errors a
bare 500, never a stack trace.

Every client is treated as hostile (docs/security.md): the API key is checked before a byte
of the body is read, the body is bounded in size and in time before it is parsed, images are
bounded in bytes and in pixels (per image and per request, from their headers, before they
are decoded), and only a few requests hold decoded pixels at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import io
import json
import math
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPBearer
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from idia.faces import to_rgb
from idia.models.base import ClosedBoxModel, EmbeddingModel, ScoredModel, ZeroShotResult
from idia.version import __version__
from idia.zeroshot import EmbeddingZeroShot

API_VERSION = "1"
IMAGE_FORMATS = ("PNG", "JPEG")
OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

# The largest legitimate body, term by term (see body_bytes_needed and docs/security.md).
IMAGE_JSON_BYTES = 64  # per image: quotes, comma and an optional data: URL prefix
TEXT_JSON_BYTES_PER_CHAR = 6  # worst case: every character escaped as \uXXXX
TEXT_JSON_BYTES = 6  # per text: quotes and comma; and brackets and comma of its group
ENVELOPE_BYTES = 64 * 2**10  # keys, outer brackets, whitespace


def body_bytes_needed(
    max_images: int, max_image_bytes: int, max_texts: int, max_total_text_chars: int
) -> int:
    """The largest body a legitimate request can need: every image at its size limit in
    base64, every text character escaped, and the JSON around them."""
    return (
        max_images * (math.ceil(max_image_bytes * 4 / 3) + IMAGE_JSON_BYTES)
        + TEXT_JSON_BYTES_PER_CHAR * max_total_text_chars
        + TEXT_JSON_BYTES * max_texts
        + ENVELOPE_BYTES
    )


@dataclass(frozen=True)
class Limits:
    """What one request may carry. The defaults fit one person's attack in one request
    (21 templates x 1,000 names, 64 face crops of about 512 x 512 as PNG).

    ``max_image_bytes``: one image as encoded (PNG/JPEG bytes, before base64).
    ``max_image_pixels`` / ``max_request_pixels``: decoded pixels of one image / of all the
    images of one request, read from the image headers before anything is decoded.
    ``max_total_text_chars``: characters of all texts of one request.
    ``max_body_bytes``: 0 derives it from the others (:func:`body_bytes_needed`).
    ``body_timeout_s``: the whole body must arrive within this time after the headers.
    """

    max_images: int = 64
    max_image_bytes: int = 512 * 2**10
    max_image_pixels: int = 2048 * 2048
    max_request_pixels: int = 2**24
    max_texts: int = 32_768
    max_text_chars: int = 1_000
    max_total_text_chars: int = 2**20
    max_body_bytes: int = 0
    body_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 0 or (value == 0 and name != "max_body_bytes"):
                raise ValueError(f"{name} must be positive, got {value}")
        if not self.max_body_bytes:
            needed = body_bytes_needed(
                self.max_images, self.max_image_bytes, self.max_texts, self.max_total_text_chars
            )
            object.__setattr__(self, "max_body_bytes", needed)


class LimitsInfo(BaseModel):
    max_images: int
    max_image_bytes: int
    max_image_pixels: int
    max_request_pixels: int
    max_texts: int
    max_text_chars: int
    max_total_text_chars: int
    max_body_bytes: int
    body_timeout_s: float


class Info(BaseModel):
    api_version: str
    server_version: str
    name: str = Field(description="The model's name, as the operator shows it.")
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
    texts, in the memory of one :class:`~idia.zeroshot.EmbeddingZeroShot`), so a client
    sending photo after photo with the same candidates pays for the text tower once, and
    memory stays bounded however many different candidate sets arrive.
    """

    def __init__(
        self, model: EmbeddingModel | ClosedBoxModel, max_cached_texts: int = 200_000
    ) -> None:
        if not isinstance(model, EmbeddingModel | ClosedBoxModel):
            raise TypeError(f"{type(model).__name__} is not a model idia can serve")
        self.model = model
        self.classifier: ClosedBoxModel = (
            EmbeddingZeroShot(model, max_groups=None, max_texts=max_cached_texts)
            if isinstance(model, EmbeddingModel)
            else model
        )
        self._lock = threading.Lock()

    @property
    def logit_scale(self) -> float | None:
        if isinstance(self.model, EmbeddingModel | ScoredModel):
            return float(self.model.logit_scale)
        return None

    def answer(self, images: Sequence[Image.Image], groups: list[list[str]]) -> ZeroShotResult:
        with self._lock:
            return self.classifier.zero_shot(images, groups)


def refusal(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error answered before the request reached the app; the connection is closed, since
    the rest of the body is never read."""
    return JSONResponse(
        {"detail": detail}, status, headers={**(headers or {}), "Connection": "close"}
    )


def _key_digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class RequireKey:
    """Refuse requests without the API key (401) before any of their body is read.

    A pure ASGI middleware, outside the body reader: an unauthenticated client costs the
    server its headers only. Keys are compared as SHA-256 digests in constant time, so neither
    their content nor their length leaks through timing. ``OPEN_PATHS`` (health, API schema)
    need no key."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._digest = _key_digest(api_key.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        protected = scope["type"] == "http" and scope["path"] not in OPEN_PATHS
        if protected and not self._authorized(scope["headers"]):
            response = refusal(401, "missing or wrong API key", {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        bearer = header = None
        for name, value in headers:
            if name == b"authorization":
                scheme, _, token = value.strip().partition(b" ")
                if scheme.lower() == b"bearer" and token.strip():
                    bearer = token.strip()
            elif name == b"x-api-key" and value.strip():
                header = value.strip()
        given = bearer or header
        return given is not None and hmac.compare_digest(_key_digest(given), self._digest)


class BodyLimit:
    """Read the whole body before the app sees it, refusing bodies over ``max_bytes`` (413)
    and bodies that have not fully arrived ``timeout_s`` after the headers (408), so a slow
    client cannot hold a connection (and its share of the connection limit) indefinitely."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = refusal(413, f"request body over the limit of {self.max_bytes:,} bytes")
        declared = dict(scope["headers"]).get(b"content-length")
        try:
            if declared is not None and int(declared) > self.max_bytes:
                await too_large(scope, receive, send)
                return
        except ValueError:
            await refusal(400, "invalid Content-Length")(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout_s
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                slow = refusal(408, f"the request body did not arrive within {self.timeout_s:g} s")
                await slow(scope, receive, send)
                return
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


def image_bytes(data: str, index: int, max_bytes: int) -> bytes:
    """The encoded image a client sent (base64, optionally as a data: URL), within its limit;
    an oversized one is refused before base64 is decoded."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    too_large = HTTPException(413, f"images[{index}] is over the limit of {max_bytes:,} bytes")
    if len(data) > math.ceil(max_bytes * 4 / 3) + 3:
        raise too_large
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise HTTPException(400, f"images[{index}] is not valid base64") from err
    if len(raw) > max_bytes:
        raise too_large
    return raw


def open_image(raw: bytes, index: int, max_pixels: int) -> Image.Image:
    """The image's header, read without decoding its pixels: format and size are checked
    here, so an image that decodes to more than ``max_pixels`` never is."""
    try:
        image = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError as err:
        raise HTTPException(413, f"images[{index}] is too large to decode") from err
    except UnidentifiedImageError as err:
        raise HTTPException(400, f"images[{index}] is not a PNG or JPEG image") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise HTTPException(400, f"images[{index}] is corrupt or truncated") from err
    if image.format not in IMAGE_FORMATS:
        raise HTTPException(400, f"images[{index}] is {image.format}; send PNG (lossless) or JPEG")
    if image.width * image.height > max_pixels:
        raise HTTPException(
            413,
            f"images[{index}] has {image.width}x{image.height} pixels, over the limit of "
            f"{max_pixels:,}",
        )
    return image


def open_images(images: Sequence[str], limits: Limits) -> list[Image.Image]:
    """The request's images, headers read and every limit checked, nothing decoded yet; the
    first image over the request's pixel budget stops the reading."""
    opened, total = [], 0
    for i, data in enumerate(images):
        image = open_image(image_bytes(data, i, limits.max_image_bytes), i, limits.max_image_pixels)
        total += image.width * image.height
        if total > limits.max_request_pixels:
            raise HTTPException(
                413,
                f"the first {i + 1} images have {total:,} pixels in all, over the limit of "
                f"{limits.max_request_pixels:,} per request",
            )
        opened.append(image)
    return opened


def decode_image(image: Image.Image, index: int) -> Image.Image:
    """The RGB pixels of an opened image, exactly as encoded (EXIF rotation applied, alpha
    on white)."""
    try:
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))
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
    chars = 0
    for g, group in enumerate(groups):
        for t, text in enumerate(group):
            if len(text) > limits.max_text_chars:
                raise HTTPException(
                    413,
                    f"text_groups[{g}][{t}] has {len(text):,} characters, over the limit of "
                    f"{limits.max_text_chars:,}",
                )
            chars += len(text)
    if chars > limits.max_total_text_chars:
        raise HTTPException(
            413,
            f"the texts have {chars:,} characters in all, over the limit of "
            f"{limits.max_total_text_chars:,} per request",
        )


def create_app(
    model: EmbeddingModel | ClosedBoxModel,
    top1_only: bool = False,
    api_key: str | None = None,
    limits: Limits | None = None,
    max_cached_texts: int = 200_000,
    decoding_requests: int = 2,
    name: str | None = None,
) -> FastAPI:
    """The zero-shot API for ``model``. ``top1_only``: reveal only the best text, never scores.
    ``api_key``: when set, everything but /health and the API schema needs it (Bearer token or
    X-API-Key). ``decoding_requests``: requests holding decoded images at once (one is
    answered while the next decodes; the others wait with their images still encoded), so
    decoded pixels stay under ``decoding_requests x max_request_pixels`` however many clients
    send. ``name``: the name /info gives (default: the model's)."""
    if decoding_requests < 1:
        raise ValueError(f"decoding_requests must be at least 1, got {decoding_requests}")
    limits = limits or Limits()
    service = ZeroShotService(model, max_cached_texts)
    decoding = asyncio.Semaphore(decoding_requests)
    scale = None if top1_only else service.logit_scale
    info = Info(
        api_version=API_VERSION,
        server_version=__version__,
        name=name or model.name,
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
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, timeout_s=limits.body_timeout_s)
    if api_key:
        app.add_middleware(RequireKey, api_key=api_key)  # added last: runs first
    # These only declare the key in the OpenAPI schema; RequireKey enforces it.
    declared = (
        [
            Depends(HTTPBearer(auto_error=False, description="The API key as a bearer token.")),
            Depends(APIKeyHeader(name="X-API-Key", auto_error=False)),
        ]
        if api_key
        else []
    )
    errors = {
        code: {"model": ErrorDetail, "description": text}
        for code, text in (
            (400, "Undecodable image"),
            (401, "Missing or wrong API key"),
            (408, "The body did not arrive in time"),
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
    async def health() -> Health:
        # async: answered on the event loop, even while every worker thread is busy.
        return Health(status="ok")

    @app.get("/info", response_model=Info, dependencies=declared, responses=errors)
    async def get_info() -> Info:
        return info

    def answer(opened: list[Image.Image], groups: list[list[str]]) -> bytes:
        images = [decode_image(image, i) for i, image in enumerate(opened)]
        result = service.answer(images, groups)
        scores = None if top1_only or result.scores is None else result.scores.tolist()
        return json.dumps({"best": result.best.tolist(), "scores": scores}).encode()

    @app.post(
        "/v1/zero-shot", response_model=ZeroShotAnswer, dependencies=declared, responses=errors
    )
    async def zero_shot(request: ZeroShotRequest) -> Response:
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
        opened = await run_in_threadpool(open_images, request.images, limits)
        async with decoding:  # waiting here holds encoded bytes only, and no worker thread
            body = await run_in_threadpool(answer, opened, groups)
        return Response(body, media_type="application/json")

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
