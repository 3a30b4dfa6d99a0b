"""The zero-shot API's contract: answers identical to in-process, clear 4xx for bad or
oversized requests, API keys checked before any body is read, no stack traces, bounded memory
(per request and across requests), slow clients cut off, and a small loopback load run."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from idia.models import load_model
from idia.models.base import ZeroShotResult
from idia.serve import Limits, ZeroShotService, api, create_app, running_server
from idia.zeroshot import EmbeddingZeroShot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tiny_open_clip):
    config, checkpoint = tiny_open_clip
    return load_model(f"open_clip:{config}:{checkpoint}", device="cpu")


def photo(seed: int, size: tuple[int, int] = (40, 30)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def b64(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


GROUPS = [[f"a photo of person {i} in style {g}" for i in range(6)] for g in range(3)]


def test_health_info_and_openapi(model):
    client = TestClient(create_app(model))
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["name"] == model.name and info["identity"] == model.identity
    assert info["top1_only"] is False and info["logit_scale"] == pytest.approx(model.logit_scale)
    assert info["limits"]["max_texts"] == Limits().max_texts
    schema = client.get("/openapi.json").json()
    assert {"/health", "/info", "/v1/zero-shot"} <= schema["paths"].keys()
    request = schema["components"]["schemas"]["ZeroShotRequest"]["properties"]
    assert {"images", "text_groups", "texts"} <= request.keys()


def test_answers_are_the_in_process_answers_bit_for_bit(model):
    images = [photo(i) for i in range(3)]
    client = TestClient(create_app(model))
    answer = client.post(
        "/v1/zero-shot", json={"images": [b64(i) for i in images], "text_groups": GROUPS}
    ).json()
    expected = EmbeddingZeroShot(model).zero_shot(images, GROUPS)
    assert np.array_equal(np.array(answer["best"]), expected.best)
    assert np.array_equal(np.array(answer["scores"], dtype=np.float32), expected.scores)


def test_texts_shorthand_jpeg_and_data_url(model):
    client = TestClient(create_app(model))
    jpeg = "data:image/jpeg;base64," + b64(photo(1), "JPEG")
    answer = client.post(
        "/v1/zero-shot", json={"images": [jpeg, b64(photo(2))], "texts": GROUPS[0]}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert np.array(body["best"]).shape == (2, 1) and np.array(body["scores"]).shape == (2, 1, 6)


def test_top1_only_reveals_no_scores(model):
    client = TestClient(create_app(model, top1_only=True))
    assert client.get("/info").json()["logit_scale"] is None
    body = client.post("/v1/zero-shot", json={"images": [b64(photo(0))], "texts": GROUPS[1]}).json()
    assert body["scores"] is None and len(body["best"][0]) == 1


def gif() -> str:
    buffer = io.BytesIO()
    photo(0).save(buffer, format="GIF")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"images": ["%%%"], "texts": ["a"]}, 400, "not valid base64"),
        ({"images": [base64.b64encode(b"hello").decode()], "texts": ["a"]}, 400, "not a PNG"),
        ({"images": [gif()], "texts": ["a"]}, 400, "send PNG"),
        ({"images": [b64(photo(0))[:200]], "texts": ["a"]}, 400, "corrupt"),
        ({"images": [b64(photo(0))]}, 422, "either 'text_groups' or 'texts'"),
        ({"images": [b64(photo(0))], "texts": ["a"], "text_groups": [["a"]]}, 422, "either"),
        ({"images": [b64(photo(0))], "text_groups": [["a", "b"], ["c"]]}, 422, "same size"),
        ({"images": [b64(photo(0))], "texts": []}, 422, "at least one text"),
        ({"images": [], "texts": ["a"]}, 422, "at least one image"),
        ({"images": [b64(photo(0))], "texts": ["a"], "top_k": 3}, 422, "top_k"),
        ({"images": "x" * 5000, "texts": ["a"]}, 422, "images"),
    ],
)
def test_bad_requests_get_clear_4xx(model, payload, status, message):
    response = TestClient(create_app(model)).post("/v1/zero-shot", json=payload)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and message in detail
    assert "xxxxxxxxxx" not in detail, "the request is not echoed back"


def test_malformed_json_is_a_422(model):
    response = TestClient(create_app(model)).post(
        "/v1/zero-shot", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and "JSON" in response.json()["detail"]


def test_limits_are_enforced_with_413(model):
    limits = Limits(
        max_body_bytes=200_000, max_images=2, max_texts=8, max_text_chars=40, max_image_pixels=2500
    )
    client = TestClient(create_app(model, limits=limits))
    small = b64(photo(0, (40, 40)))

    def post(**payload):
        return client.post("/v1/zero-shot", json=payload)

    assert post(images=[small], texts=["a", "b"]).status_code == 200
    cases = [
        (post(images=[small] * 3, texts=["a"]), "3 images"),
        (post(images=[small], text_groups=[["a"] * 3] * 3), "9 texts"),
        (post(images=[small], texts=["a" * 41]), "41 characters"),
        (post(images=[b64(photo(0, (51, 50)))], texts=["a"]), "51x50 pixels"),
        (post(images=["A" * 300_000], texts=["a"]), "over the limit of 200,000 bytes"),
    ]
    for response, message in cases:
        assert response.status_code == 413, response.text
        assert message in response.json()["detail"]
    chunked = client.post(  # no Content-Length: the body is counted as it arrives
        "/v1/zero-shot",
        content=iter([b'{"images": ["' + b"A" * 150_000, b"A" * 150_000 + b'"]}']),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 413


def test_api_key(model):
    client = TestClient(create_app(model, api_key="s3cret"))
    payload = {"images": [b64(photo(0))], "texts": ["a", "b"]}
    assert client.get("/health").status_code == 200, "health stays open for load balancers"
    assert client.get("/openapi.json").status_code == 200, "the schema holds no secret"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cret2"}):
        denied = client.post("/v1/zero-shot", json=payload, headers=headers)
        assert denied.status_code == 401 and denied.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/info", headers=headers).status_code == 401
        assert client.get("/elsewhere", headers=headers).status_code == 401
    assert client.get("/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    ok = client.post("/v1/zero-shot", json=payload, headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 200


def raw_exchange(url: str, request: bytes, then: bytes = b"") -> bytes:
    """Send raw HTTP bytes (headers, then part of a body) and read what the server answers,
    without ever sending the rest of the body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(request)
        sock.sendall(then)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_the_key_is_checked_before_the_body_is_read(model):
    """A wrong key gets its 401 while the server still waits for a 10 MB body: nothing of
    an unauthenticated request is buffered or parsed."""
    headers = (
        b"POST /v1/zero-shot HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000\r\nAuthorization: Bearer wrong\r\n\r\n"
    )
    with running_server(create_app(model, api_key="k3y")) as url:
        answer = raw_exchange(url, headers, b'{"images": ["')
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
    assert b"connection: close" in answer.lower()


def test_a_body_that_does_not_arrive_in_time_gets_408(model):
    headers = (
        b"POST /v1/zero-shot HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    with running_server(create_app(model, limits=Limits(body_timeout_s=0.5))) as url:
        answer = raw_exchange(url, headers, b'{"images": [')  # and then nothing
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


def padded_png(size: int) -> str:
    """A PNG of exactly ``size`` bytes (bytes after IEND are ignored by decoders)."""
    buffer = io.BytesIO()
    photo(0, (8, 8)).save(buffer, format="PNG")
    data = buffer.getvalue()
    assert len(data) <= size
    return base64.b64encode(data + b"\0" * (size - len(data))).decode()


def test_the_default_body_limit_is_what_the_largest_request_needs(model):
    default = Limits()
    assert default.max_body_bytes == api.body_bytes_needed(
        default.max_images, default.max_image_bytes, default.max_texts,
        default.max_total_text_chars,
    )
    assert default.max_body_bytes < 50 * 2**20, "well under the old 64 MiB"
    small = Limits(
        max_images=3, max_image_bytes=2_000, max_texts=4, max_text_chars=10,
        max_total_text_chars=40,
    )
    largest = {  # every limit reached, every character escaped, data: URLs, indented JSON
        "images": ["data:image/png;base64," + padded_png(2_000)] * 3,
        "text_groups": [["\u00e9" * 10, "\u00e8" * 10]] * 2,
    }
    body = json.dumps(largest, indent=1, ensure_ascii=True).encode()
    client = TestClient(create_app(model, limits=small))
    answer = client.post(
        "/v1/zero-shot", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    over = client.post("/v1/zero-shot", json={"images": [padded_png(2_001)], "texts": ["a"]})
    assert over.status_code == 413 and "2,000 bytes" in over.json()["detail"]


def png(size: tuple[int, int]) -> str:
    """A flat PNG: a few hundred bytes that decode to ``size`` pixels (a pixel bomb, when
    large)."""
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_pixels_are_budgeted_per_request_from_headers_before_decoding(model, monkeypatch):
    bomb = png((4096, 4096))  # 48 MiB of pixels from a ~50 KB file
    assert len(bomb) < 100_000
    small = png((60, 60))

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("an image over a limit was decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    client = TestClient(create_app(model))
    answer = client.post("/v1/zero-shot", json={"images": [bomb], "texts": ["a"]})
    assert answer.status_code == 413 and "4096x4096" in answer.json()["detail"]
    limits = Limits(max_image_pixels=4_000, max_request_pixels=10_000)
    client = TestClient(create_app(model, limits=limits))
    answer = client.post("/v1/zero-shot", json={"images": [small] * 3, "texts": ["a"]})
    assert answer.status_code == 413
    assert "first 3 images have 10,800 pixels in all, over the limit of 10,000" in (
        answer.json()["detail"]
    )


class Waiting:
    """A closed-box model that answers only when released."""

    name = "waiting"
    identity = "waiting-v1"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def zero_shot(self, images, text_groups) -> ZeroShotResult:
        self.entered.set()
        assert self.release.wait(60)
        return ZeroShotResult(best=np.zeros((len(images), len(text_groups)), dtype=np.int64))


def test_queued_requests_hold_no_worker_thread_and_no_decoded_pixels(monkeypatch):
    """48 requests queue behind a busy model: more than the worker pool's 40 threads. Only
    two of them decode their images, and /health still answers at once."""
    decoded = []
    original = api.decode_image
    monkeypatch.setattr(api, "decode_image", lambda *a: decoded.append(1) or original(*a))
    model = Waiting()
    payload = {"images": [b64(photo(0))], "texts": ["a"]}
    with (
        running_server(create_app(model, decoding_requests=2)) as url,
        ThreadPoolExecutor(48) as pool,
    ):
        try:
            futures = [
                pool.submit(httpx.post, f"{url}/v1/zero-shot", json=payload, timeout=120)
                for _ in range(48)
            ]
            assert model.entered.wait(30)
            time.sleep(1.0)  # let the others arrive and queue
            health = httpx.get(f"{url}/health", timeout=10)
            queued_decodes = len(decoded)
        finally:
            model.release.set()
        statuses = [future.result().status_code for future in futures]
    assert health.status_code == 200
    assert queued_decodes <= 2, f"{queued_decodes} requests held decoded images at once"
    assert statuses == [200] * 48 and len(decoded) == 48


class Broken:
    """A closed-box model that fails inside, with a secret in its error message."""

    name = "broken"
    identity = "broken-v1"

    def zero_shot(self, images, text_groups) -> ZeroShotResult:
        raise RuntimeError("/home/secret/weights.pt exploded")


def test_internal_errors_are_a_bare_500(model):
    client = TestClient(create_app(Broken()), raise_server_exceptions=False)
    response = client.post("/v1/zero-shot", json={"images": [b64(photo(0))], "texts": ["a"]})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "secret" not in response.text and "Traceback" not in response.text


def test_closed_box_models_can_be_served_too(knowing_model):
    served = EmbeddingZeroShot(knowing_model)
    client = TestClient(create_app(served))
    person = knowing_model.people[0]
    texts = [f"a photo of {p}" for p in knowing_model.people]
    body = client.post(
        "/v1/zero-shot", json={"images": [b64(knowing_model.photo(person))], "texts": texts}
    ).json()
    assert body["best"] == [[0]]


def test_prompt_embeddings_are_reused_and_memory_is_bounded(knowing_model):
    service = ZeroShotService(knowing_model, max_cached_texts=12)
    image = [knowing_model.photo("Jane Doe")]
    groups = [[f"{p} {i}" for p in knowing_model.people] for i in range(2)]  # 12 texts
    service.answer(image, groups)
    service.answer(image, groups)
    assert knowing_model.text_calls == 12, "the same candidates are encoded once"
    for i in range(3):  # other candidate sets push the first one out
        service.answer(image, [[f"other {i} {j}" for j in range(6)]])
    service.answer(image, groups)
    assert knowing_model.text_calls == 12 + 18 + 12
    assert service.classifier.texts_in_memory <= 12


def load_benchmark():
    spec = importlib.util.spec_from_file_location("load_serve", ROOT / "benchmarks/load_serve.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_small_load_over_loopback(model):
    """The benchmark's load run, scaled down: no errors, answers all equal, memory steady."""
    bench = load_benchmark()
    with running_server(create_app(model)) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        stats = bench.run_load(
            url, requests=120, concurrency=8, names=50, image_side=64, server_pid=os.getpid()
        )
    assert stats.errors == 0 and stats.ok == 120
    assert stats.distinct_answers == 1, "every request got the same answer"
    assert 0 < stats.p50 <= stats.p95
    assert stats.rss_mib and stats.memory_growth_mib < 64, "memory steady"
    assert not bench.failed(stats, max_growth_mib=64)
    print(stats.report())


def test_hostile_traffic_is_refused_while_legitimate_requests_succeed(model):
    """The benchmark's hostile clients, scaled down: oversized bodies without a key get 401,
    slow bodies 408, pixel bombs 413, and the legitimate requests meanwhile all succeed."""
    bench = load_benchmark()
    limits = Limits(body_timeout_s=1.0)
    with running_server(create_app(model, api_key="k3y", limits=limits)) as url:
        hostile = bench.HostileTraffic(
            url, "k3y", limits.max_body_bytes, oversized=1, slow=2, bombs=2, own_process=False
        )
        with hostile:
            time.sleep(1.5)  # a slow body reaches its timeout
            stats = bench.run_load(
                url, requests=20, concurrency=2, names=20, image_side=48, api_key="k3y"
            )
    assert stats.ok == 20 and stats.errors == 0
    outcomes = hostile.outcomes
    assert set(outcomes["oversized, no key"]) <= {"401", "cut off"}, outcomes
    assert "401" in outcomes["oversized, no key"]
    assert set(outcomes["slow body"]) == {"408"} and set(outcomes["pixel bomb"]) == {"413"}
    assert hostile.refused()
    print(hostile.report())


def test_the_serve_command(tiny_open_clip):
    """`idia serve` itself, as a subprocess on loopback: options reach the API; it stops."""
    config, checkpoint = tiny_open_clip
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-c",
        "from idia.cli import main; main()",
        "serve",
        "--model",
        f"open_clip:{config}:{checkpoint}",
        "--port",
        str(port),
        "--top1-only",
        "--api-key",
        "k3y",
        "--max-images",
        "2",
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            assert time.monotonic() < deadline, "idia serve did not come up"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert httpx.get(f"{url}/info").status_code == 401
        info = httpx.get(f"{url}/info", headers={"X-API-Key": "k3y"}).json()
        assert info["top1_only"] and info["limits"]["max_images"] == 2
        assert info["name"] == "tiny-test-clip (epoch_1)", "a name, not the checkpoint's path"
        assert info["limits"]["max_body_bytes"] == Limits(max_images=2).max_body_bytes
    finally:
        server.terminate()
        server.wait(20)
    assert "serving tiny-test-clip (epoch_1)" in server.stderr.read().decode()
