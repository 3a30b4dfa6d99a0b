"""The zero-shot API's contract: answers identical to in-process, clear 4xx for bad or
oversized requests, API keys, no stack traces, bounded memory, and a small loopback load run."""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from idia.models import load_model
from idia.models.base import ZeroShotResult
from idia.serve import Limits, ZeroShotService, create_app, running_server
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
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cret2"}):
        denied = client.post("/v1/zero-shot", json=payload, headers=headers)
        assert denied.status_code == 401 and denied.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/info", headers=headers).status_code == 401
    assert client.get("/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    ok = client.post("/v1/zero-shot", json=payload, headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 200


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
    assert sum(size for _, size in service._recent.values()) <= 12


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
    finally:
        server.terminate()
        server.wait(20)
    assert "serving open_clip:" in server.stderr.read().decode()
