"""A model reachable only through an HTTP API: the paper's closed-box threat model, for real.

:class:`RemoteModel` is a :class:`~idia.models.base.ClosedBoxModel` that talks to
``idia serve`` (or any service with the same API, see docs/closed_box.md). It never sees
weights or embeddings: it sends the exact pixels of each face crop (lossless PNG) and the
candidate prompts, and gets back the index of the best prompt (and the scores, if the provider
reveals them).

Requests are packed within the limits the server announces at ``/info`` (images, texts,
pixels and bytes per request; a crop over the server's per-image limits is downscaled, aspect
ratio kept, and counted), sent by a few threads at once, and retried with exponential backoff
on connection errors, 429 and 5xx. ``queries`` counts image x prompt-set classifications, the
attacker's real cost; it does not depend on how requests were packed. A request retried after
the server may already have answered it (a read timeout, a dropped connection, a 500/502/504)
may be billed twice: its queries are counted apart, in ``possibly_duplicated_queries``.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from PIL import Image

from idia.models.base import ModelLoadError, ZeroShotResult

API_KEY_ENV = "IDIA_API_KEY"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# Failures after which the server may have answered (and billed) the request anyway.
MAYBE_ANSWERED_STATUS = frozenset({500, 502, 504})
MAYBE_ANSWERED_ERRORS = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)
_ENVELOPE_BYTES = 4096  # JSON punctuation and keys around the images and texts


class RemoteModelError(ModelLoadError):
    """The remote model could not answer; the message says why (and what to do, if we know)."""


@dataclass(frozen=True)
class RemoteLimits:
    """What the server accepts in one request (announced at ``/info``; the last two only by
    servers that have them)."""

    max_body_bytes: int
    max_images: int
    max_texts: int
    max_image_pixels: int
    max_image_bytes: int | None = None
    max_request_pixels: int | None = None

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> RemoteLimits:
        limits = info.get("limits") or {}
        names = list(cls.__dataclass_fields__)
        try:
            values = {k: int(limits[k]) for k in names[:4]}
            values |= {k: int(limits[k]) for k in names[4:] if limits.get(k) is not None}
        except (KeyError, TypeError, ValueError) as err:
            raise RemoteModelError(f"the server's /info has no usable limits ({err})") from err
        if min(values.values()) < 1:
            raise RemoteModelError(f"the server's /info announces limits below 1: {values}")
        return cls(**values)

    @property
    def pixels_per_image(self) -> int:
        """What one image may have: its own limit, and a whole request's."""
        return min(self.max_image_pixels, self.max_request_pixels or self.max_image_pixels)


@dataclass(frozen=True)
class _Request:
    images: tuple[int, ...]  # indices into the caller's images
    groups: tuple[int, ...]  # indices into the caller's text groups
    body: bytes


@dataclass(frozen=True)
class _Encoded:
    data: str  # base64 PNG
    pixels: int
    downscaled: bool


def encode_png(image: Image.Image, compress_level: int = 1) -> str:
    """Base64 of a lossless PNG: the server decodes exactly these RGB pixels."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=compress_level)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def downscale(image: Image.Image, max_pixels: int) -> Image.Image:
    """``image`` shrunk to at most ``max_pixels``, its aspect ratio kept (to the pixel)."""
    if image.width * image.height <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (image.width * image.height))
    width, height = max(1, int(image.width * scale)), max(1, int(image.height * scale))
    while width * height > max_pixels:  # rounding, or a side clamped to 1
        if width >= height:
            width -= 1
        else:
            height -= 1
    return image.resize((width, height), Image.Resampling.BICUBIC)


def fit_image(image: Image.Image, limits: RemoteLimits) -> _Encoded:
    """The PNG to send for ``image``: as it is when the server accepts it, else downscaled to
    the server's pixel limit and, if the PNG is still over its byte limit, further down (a
    stronger compression is tried first, since it keeps every pixel)."""
    image = image.convert("RGB")
    original = image.size
    image = downscale(image, limits.pixels_per_image)
    data = encode_png(image)
    max_bytes = limits.max_image_bytes
    if max_bytes is not None and base64_size(data) > max_bytes:
        data = encode_png(image, compress_level=9)
    while max_bytes is not None and base64_size(data) > max_bytes:
        target = int(image.width * image.height * max_bytes / base64_size(data) * 0.9)
        if target < 1:
            raise RemoteModelError(f"a photo cannot be made to fit the server's {max_bytes} bytes")
        image = downscale(image, target)
        data = encode_png(image, compress_level=9)
    return _Encoded(data, image.width * image.height, image.size != original)


def base64_size(data: str) -> int:
    """The number of bytes ``data`` (base64) decodes to."""
    return len(data) * 3 // 4 - data.endswith("=") - data.endswith("==")


class RemoteModel:
    """A zero-shot classifier behind ``url``; only its answers are visible.

    ``api_key``: sent as a bearer token (default: ``$IDIA_API_KEY``). ``concurrency``: requests
    in flight at once. ``max_retries`` / ``backoff``: a transient failure is retried after
    ``backoff * 2**attempt`` seconds (jittered, at most ``max_backoff``, or the server's
    Retry-After). ``transport``: an httpx transport, e.g. for tests.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 300.0,
        concurrency: int = 4,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.url = url.rstrip("/")
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._lock = threading.Lock()
        self._client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self.queries = 0  # image x text-group classifications answered
        self.requests = 0  # HTTP requests answered
        self.retries = 0  # failed attempts that were tried again
        self.possibly_duplicated_queries = 0  # queries retried after the server may have answered
        self.downscaled_images = 0  # images shrunk to fit the server's limits
        try:
            info = self._call("GET", "/info")
            self.name = str(info["name"])
            self.identity = str(info["identity"])
            self.limits = RemoteLimits.from_info(info)
        except (KeyError, TypeError) as err:
            self.close()
            raise RemoteModelError(f"{self.url}/info does not name the model ({err})") from err
        except RemoteModelError:
            self.close()
            raise
        self.top1_only = bool(info.get("top1_only", False))
        if info.get("logit_scale") is not None:
            self.logit_scale = float(info["logit_scale"])

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def usage(self) -> dict[str, Any]:
        """What the attack cost so far, as a provider would bill it: ``queries`` answered,
        plus ``possibly_duplicated_queries`` the provider may have answered (and billed) once
        more, because their request was retried after a failure that came too late to be sure
        it was not answered."""
        return {
            "url": self.url,
            "queries": self.queries,
            "requests": self.requests,
            "retries": self.retries,
            "possibly_duplicated_queries": self.possibly_duplicated_queries,
            "downscaled_images": self.downscaled_images,
        }

    def zero_shot(
        self, images: Sequence[Image.Image], text_groups: Sequence[Sequence[str]]
    ) -> ZeroShotResult:
        groups = [list(group) for group in text_groups]
        sizes = {len(group) for group in groups}
        if len(sizes) != 1:
            raise ValueError(f"text groups must have equal sizes, got {sorted(sizes)}")
        n, g, k = len(images), len(groups), sizes.pop()
        best = np.zeros((n, g), dtype=np.int64)
        scores = None if self.top1_only else np.zeros((n, g, k), dtype=np.float32)
        if n == 0:
            return ZeroShotResult(best=best, scores=scores)
        encoded = [fit_image(image, self.limits) for image in images]
        with self._lock:
            self.downscaled_images += sum(e.downscaled for e in encoded)
        requests = self._plan(encoded, groups)

        def send(request: _Request) -> None:
            shape = (len(request.images), len(request.groups))
            answer = self._call("POST", "/v1/zero-shot", request.body, shape[0] * shape[1])
            rows, cols = np.ix_(request.images, request.groups)
            picks = _array(answer, "best", shape, np.int64)
            if ((picks < 0) | (picks >= k)).any():
                raise RemoteModelError(f"the server picked texts outside 0..{k - 1}")
            best[rows, cols] = picks
            if scores is not None:
                scores[rows, cols] = _array(answer, "scores", (*shape, k), np.float32)
            with self._lock:
                self.queries += shape[0] * shape[1]

        if len(requests) == 1:
            send(requests[0])
        else:
            with ThreadPoolExecutor(min(self.concurrency, len(requests))) as pool:
                futures = [pool.submit(send, request) for request in requests]
                try:
                    for future in futures:
                        future.result()
                finally:
                    for future in futures:
                        future.cancel()
        return ZeroShotResult(best=best, scores=scores)

    def _plan(self, images: list[_Encoded], groups: list[list[str]]) -> list[_Request]:
        """Pack images and text groups into as few requests as the server's limits allow.

        When everything fits, one request carries all images and all groups, so the server
        encodes them exactly as an in-process run would (same batches, same bits).
        """
        limits = self.limits
        k = len(groups[0])
        if k > limits.max_texts:
            raise RemoteModelError(
                f"one prompt set has {k} texts but {self.url} accepts at most "
                f"{limits.max_texts} per request; use fewer candidate names (--num-names)"
            )
        encoded = [json.dumps(group, ensure_ascii=False) for group in groups]
        text_budget = limits.max_body_bytes // 2
        group_chunks: list[list[int]] = [[]]
        used_texts = used_bytes = 0
        for index, text in enumerate(encoded):
            size = len(text.encode()) + 1
            if group_chunks[-1] and (
                used_texts + k > limits.max_texts or used_bytes + size > text_budget
            ):
                group_chunks.append([])
                used_texts = used_bytes = 0
            group_chunks[-1].append(index)
            used_texts += k
            used_bytes += size
        requests = []
        for chunk in group_chunks:
            texts_json = "[" + ",".join(encoded[i] for i in chunk) + "]"
            budget = limits.max_body_bytes - len(texts_json.encode()) - _ENVELOPE_BYTES
            pixel_budget = limits.max_request_pixels
            image_chunks: list[list[int]] = [[]]
            used = used_pixels = 0
            for index, image in enumerate(images):
                size = len(image.data) + 3
                if size > budget:
                    raise RemoteModelError(
                        f"photo {index + 1} is {size:,} bytes as PNG, more than {self.url} "
                        f"accepts in one request ({budget:,} bytes besides the prompts)"
                    )
                if image_chunks[-1] and (
                    len(image_chunks[-1]) >= limits.max_images
                    or used + size > budget
                    or (pixel_budget is not None and used_pixels + image.pixels > pixel_budget)
                ):
                    image_chunks.append([])
                    used = used_pixels = 0
                image_chunks[-1].append(index)
                used += size
                used_pixels += image.pixels
            for image_chunk in image_chunks:
                images_json = json.dumps([images[i].data for i in image_chunk])
                body = f'{{"images":{images_json},"text_groups":{texts_json}}}'.encode()
                requests.append(_Request(tuple(image_chunk), tuple(chunk), body))
        return requests

    def _call(
        self, method: str, path: str, body: bytes | None = None, queries: int = 0
    ) -> dict[str, Any]:
        """One API call, retried with exponential backoff while the failure is transient. A
        retry after the server may have answered counts the call's ``queries`` as possibly
        duplicated."""
        headers = {"Content-Type": "application/json"} if body is not None else None
        attempt = 0
        while True:
            retry_after = None
            try:
                response = self._client.request(method, path, content=body, headers=headers)
            except httpx.TransportError as err:
                problem = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
                maybe_answered = isinstance(err, MAYBE_ANSWERED_ERRORS)
            else:
                if response.status_code < 400:
                    with self._lock:
                        self.requests += 1
                    try:
                        return response.json()
                    except ValueError as err:
                        raise RemoteModelError(f"{self.url}{path} answered with no JSON") from err
                if response.status_code not in RETRY_STATUS:
                    raise RemoteModelError(self._explain(response, path))
                problem = f"HTTP {response.status_code} {_detail(response)}"
                retry_after = _retry_after(response)
                maybe_answered = response.status_code in MAYBE_ANSWERED_STATUS
            if attempt == self.max_retries:
                raise RemoteModelError(
                    f"{self.url}{path} failed {attempt + 1} times; last: {problem}"
                )
            with self._lock:
                self.retries += 1
                if maybe_answered:
                    self.possibly_duplicated_queries += queries
            delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
            self._sleep(min(self.max_backoff, retry_after) if retry_after is not None else delay)
            attempt += 1

    def _explain(self, response: httpx.Response, path: str) -> str:
        detail = _detail(response)
        if response.status_code == 401:
            return (
                f"{self.url} refused the API key ({detail}); pass --api-key or set ${API_KEY_ENV}"
            )
        if response.status_code == 404 and path == "/info":
            return f"{self.url} does not look like an idia zero-shot service (no /info)"
        return f"{self.url}{path}: HTTP {response.status_code}: {detail}"


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else (response.reason_phrase or "")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _array(answer: dict[str, Any], key: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    try:
        array = np.asarray(answer[key], dtype=dtype)
    except (KeyError, TypeError, ValueError) as err:
        raise RemoteModelError(f"the server's answer has no usable {key!r} ({err})") from err
    if array.shape != shape:
        raise RemoteModelError(f"the server's {key!r} has shape {array.shape}, expected {shape}")
    return array
