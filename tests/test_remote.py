"""The closed-box backend: through the API, the attack gets the in-process answers, counts its
queries, packs requests within the server's limits (downscaling crops over them), retries what
is transient and nothing else, and says which retried queries may have been answered twice."""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from idia import IdentityInferenceAttack, create_attack
from idia.cli import app
from idia.cli.render import report_usage
from idia.models import ModelLoadError, load_model, parse_spec
from idia.models.base import ZeroShotResult
from idia.models.remote import RemoteModel, RemoteModelError
from idia.serve import Limits, create_app, running_server
from idia.zeroshot import EmbeddingZeroShot

runner = CliRunner()


@pytest.fixture(scope="module")
def spec(tiny_open_clip) -> str:
    config, checkpoint = tiny_open_clip
    return f"open_clip:{config}:{checkpoint}"


@pytest.fixture(scope="module")
def model(spec):
    return load_model(spec, device="cpu")


@pytest.fixture(scope="module")
def served(model):
    with running_server(create_app(model, api_key="k3y")) as url:
        yield url


def photos(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(7)
    return [
        Image.fromarray(rng.integers(0, 256, (48 + i, 40, 3), dtype=np.uint8)) for i in range(n)
    ]


def comparable(result) -> dict:
    """What a check through the API shares with the same check in process: the paper's rule.
    A remote model has no text tower in reach: the name tests, whose decoys are matched on the
    text tower's familiarity with each part of the name, run only in process."""
    data = result.to_dict()
    return {
        **{
            k: data[k]
            for k in (
                "name",
                "model",
                "n_photos",
                "n_candidates",
                "score",
                "member",
                "templates",
                "mean_real_rank",
                "mean_real_probability",
                "photos",
            )
        },
    }


def test_specs_name_remote_models():
    assert parse_spec("http://127.0.0.1:8000") == ("remote", "http://127.0.0.1:8000", None)
    assert parse_spec("https://api.example.org/clip")[0] == "remote"
    for bad in ("http://", "http:127.0.0.1"):
        with pytest.raises(ModelLoadError, match="not a URL"):
            parse_spec(bad)


def test_check_through_the_api_equals_in_process(model, served):
    images = photos(4)
    local = IdentityInferenceAttack(model, crop="none", num_names=60, name_decoys=200,
                                    progress=False)
    remote = IdentityInferenceAttack(
        load_model(served, api_key="k3y"), crop="none", num_names=60, progress=False
    )
    assert isinstance(remote.classifier, RemoteModel)
    assert remote.classifier.identity == model.identity and remote.model_name == model.name
    expected, got = local.check(images, "Ada Lovelace"), remote.check(images, "Ada Lovelace")
    assert comparable(got) == comparable(expected)
    # a remote model's text tower is out of reach: the name tests say so
    assert not got.claims["text_only"].tested and "closed box" in got.claims["text_only"].reason
    assert not got.claims["name_familiarity"].tested and got.name_null["key"] == "closed_box"
    assert expected.claims["name_familiarity"].tested
    usage = remote.classifier.usage()
    assert usage["queries"] == 4 * 21, "one query per photo and template"
    assert usage["requests"] == 2 and usage["retries"] == 0, "/info, then one packed request"


def test_a_known_person_is_found_through_the_api(knowing_model):
    person = knowing_model.people[0]
    images = [knowing_model.photo(person, v) for v in range(3)]
    local = IdentityInferenceAttack(knowing_model, crop="none", num_names=100, name_decoys=200,
                                    progress=False)
    expected = local.check(images, person)
    with running_server(create_app(knowing_model, top1_only=True)) as url:
        remote = create_attack(url, crop="none", num_names=100, progress=False)
        got = remote.check(images, person)
    assert expected.member and got.member and got.score == expected.score == 21
    assert [t.prediction for t in got.templates] == [t.prediction for t in expected.templates]
    # top-1 answers only: no text tower, so no decoys matched on it for the name test
    name_test = got.claims["name_familiarity"]
    assert not name_test.tested and "closed box" in name_test.reason
    assert got.mean_real_rank is None, "a top-1-only provider reveals no ranks"


def test_zero_shot_is_bit_identical_and_split_requests_agree(model):
    images = photos(5)
    groups = [[f"{i} person {j}" for j in range(7)] for i in range(5)]
    expected = EmbeddingZeroShot(model).zero_shot(images, groups)
    with running_server(create_app(model)) as url, RemoteModel(url) as remote:
        whole = remote.zero_shot(images, groups)
        assert np.array_equal(whole.best, expected.best)
        assert np.array_equal(whole.scores, expected.scores), "same batches, same bits"
    small = Limits(max_images=2, max_texts=14)
    with running_server(create_app(model, limits=small)) as url, RemoteModel(url) as remote:
        split = remote.zero_shot(images, groups)
        assert remote.queries == 25 and remote.requests == 1 + 3 * 3
    assert np.array_equal(split.best, expected.best)
    np.testing.assert_allclose(split.scores, expected.scores, atol=1e-5)


def test_requests_respect_the_body_limit(model):
    images = photos(6)
    groups = [["a", "b"]]
    app_ = create_app(model, limits=Limits(max_body_bytes=30_000))
    with running_server(app_) as url, RemoteModel(url) as remote:
        result = remote.zero_shot(images, groups)
        assert remote.requests > 2 and remote.queries == 6
        rng = np.random.default_rng(0)
        big = Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8))
        with pytest.raises(RemoteModelError, match="more than .* accepts in one request"):
            remote.zero_shot([big], groups)
    assert np.array_equal(result.best, EmbeddingZeroShot(model).zero_shot(images, groups).best)


class Recorder:
    """A closed-box model that records the size of every image it is shown."""

    name = "recorder"
    identity = "recorder-v1"

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []
        self.calls = 0

    def zero_shot(self, images, text_groups) -> ZeroShotResult:
        self.sizes += [image.size for image in images]
        self.calls += 1
        return ZeroShotResult(best=np.zeros((len(images), len(text_groups)), dtype=np.int64))


def test_crops_over_the_servers_limits_are_downscaled_not_refused():
    """A server announcing small limits gets crops it accepts (aspect ratio kept) instead of
    a 413 on every rerun; the downscaled photos are counted."""
    rng = np.random.default_rng(0)
    big = [Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)) for _ in range(3)]
    small = Image.new("RGB", (20, 20), (200, 10, 10))
    recorder = Recorder()
    limits = Limits(max_image_pixels=2_500, max_request_pixels=6_000, max_image_bytes=6_000)
    served = create_app(recorder, top1_only=True, limits=limits)
    with running_server(served) as url, RemoteModel(url) as remote:
        result = remote.zero_shot([*big, small], [["a", "b"]])
        assert result.best.shape == (4, 1)
        assert remote.downscaled_images == 3 and remote.usage()["downscaled_images"] == 3
    # requests run concurrently, so the server may see them in any order
    assert sorted(recorder.sizes).count((20, 20)) == 1, "a photo within limits is sent as is"
    downscaled = [size for size in recorder.sizes if size != (20, 20)]
    assert len(downscaled) == 3
    for width, height in downscaled:
        assert width * height <= 2_500 and abs(width / height - 160 / 90) < 0.05
    assert recorder.calls >= 2, "no request carried more than 6,000 pixels"


def test_api_key_is_required_and_sent(served, monkeypatch):
    monkeypatch.delenv("IDIA_API_KEY", raising=False)
    with pytest.raises(RemoteModelError, match="refused the API key.*--api-key"):
        RemoteModel(served)
    monkeypatch.setenv("IDIA_API_KEY", "k3y")
    assert RemoteModel(served).identity


class FakeService:
    """An httpx transport playing a flaky provider: scripted failures, then good answers;
    records how many requests were in flight at once."""

    def __init__(self, failures=(), delay: float = 0.0) -> None:
        self.failures = list(failures)
        self.delay = delay
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.calls += 1
            failure = self.failures.pop(0) if self.failures else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            if isinstance(failure, Exception):
                raise failure
            if failure is not None:
                return failure
            if request.url.path == "/info":
                limits = {
                    "max_body_bytes": 10**7,
                    "max_images": 1,
                    "max_texts": 10,
                    "max_image_pixels": 10**7,
                }
                return httpx.Response(
                    200,
                    json={
                        "name": "fake",
                        "identity": "fake-1",
                        "top1_only": True,
                        "limits": limits,
                    },
                )
            body = json.loads(request.content)
            best = [[len(g) - 1 for g in body["text_groups"]] for _ in body["images"]]
            return httpx.Response(200, json={"best": best, "scores": None})
        finally:
            with self.lock:
                self.in_flight -= 1


def fake_remote(service: FakeService, **kwargs) -> tuple[RemoteModel, list[float]]:
    sleeps: list[float] = []
    remote = RemoteModel(
        "http://fake.test", transport=httpx.MockTransport(service), sleep=sleeps.append, **kwargs
    )
    return remote, sleeps


def test_transient_errors_are_retried_with_backoff():
    service = FakeService(
        [
            None,
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(500),
            httpx.ReadTimeout("slow"),
        ]
    )
    remote, sleeps = fake_remote(service, backoff=0.1, max_retries=5)
    result = remote.zero_shot(photos(1), [["a", "b", "c"]])
    assert result.best.tolist() == [[2]] and result.scores is None
    assert remote.retries == 5 and service.calls == 1 + 6
    assert sleeps[2] == 2, "Retry-After is honoured"
    assert 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2 and 0.4 <= sleeps[3] <= 0.8


def test_retries_after_the_server_may_have_answered_are_counted_apart(capsys):
    """A read timeout or a 502 comes after the server got the request: it may have answered
    (and billed) it. Those retries are counted as possibly duplicated queries and reported;
    refused connections and 503s are not."""
    service = FakeService(
        [
            None,
            httpx.ReadTimeout("slow"),
            httpx.ConnectError("refused"),
            httpx.Response(502),
            httpx.Response(503),
        ]
    )
    remote, _ = fake_remote(service, max_retries=5)
    remote.zero_shot(photos(1), [["a", "b"], ["c", "d"]])  # two queries, one request (limits)
    assert remote.queries == 2 and remote.retries == 4
    assert remote.possibly_duplicated_queries == 2 * 2
    assert remote.usage()["possibly_duplicated_queries"] == 4
    attacker = type("Attacker", (), {"classifier": remote})()
    report_usage(attacker)
    assert "4 more possibly answered twice" in capsys.readouterr().err


def test_it_gives_up_and_does_not_retry_client_errors():
    remote, _ = fake_remote(FakeService([None, *[httpx.Response(502)] * 3]), max_retries=2)
    with pytest.raises(RemoteModelError, match="failed 3 times; last: HTTP 502"):
        remote.zero_shot(photos(1), [["a"]])
    assert remote.retries == 2
    refused = FakeService([None, httpx.Response(413, json={"detail": "3 images, over the limit"})])
    remote, _ = fake_remote(refused)
    with pytest.raises(RemoteModelError, match="HTTP 413: 3 images, over the limit"):
        remote.zero_shot(photos(1), [["a"]])
    assert refused.calls == 2 and remote.retries == 0


def test_concurrency_is_limited_and_queries_counted():
    service = FakeService(delay=0.05)
    remote, _ = fake_remote(service, concurrency=3)
    result = remote.zero_shot(photos(8), [[f"t{i}{j}" for j in range(4)] for i in range(5)])
    assert result.best.shape == (8, 5) and (result.best == 3).all()
    assert remote.queries == 40 and remote.requests == 1 + 8 * 3  # 1 image, 2 groups a request
    assert service.max_in_flight == 3


def test_malformed_answers_are_clear_errors():
    class Liar(FakeService):
        def __init__(self, answer) -> None:
            super().__init__()
            self.answer = answer

        def __call__(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/info":
                return super().__call__(request)
            return httpx.Response(200, json=self.answer)

    for answer, message in [
        ({"best": [[5]], "scores": None}, "outside 0..2"),
        ({"best": [[0, 1]], "scores": None}, "shape"),
        ({"scores": None}, "no usable 'best'"),
    ]:
        remote, _ = fake_remote(Liar(answer))
        with pytest.raises(RemoteModelError, match=message):
            remote.zero_shot(photos(1), [["a", "b", "c"]])


def test_too_many_candidates_for_the_server_is_a_clear_error():
    remote, _ = fake_remote(FakeService())
    with pytest.raises(RemoteModelError, match="at most 10 per request.*--num-names"):
        remote.zero_shot(photos(1), [[str(i) for i in range(11)]])


def test_unreachable_server_is_a_clear_error():
    remote_url = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback
    with pytest.raises(RemoteModelError, match="failed 2 times; last: ConnectError"):
        RemoteModel(remote_url, max_retries=1, backoff=0.01)


def save(image: Image.Image, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def test_cli_check_and_audit_run_through_the_api(spec, served, tmp_path):
    images = photos(4)
    for i, image in enumerate(images):
        save(image, tmp_path / "people" / ("Ada Lovelace" if i < 2 else "Alan Turing") / f"{i}.png")
    pd.DataFrame({"name": ["Ada Lovelace", "Alan Turing"], "member": [1, 0]}).to_csv(
        tmp_path / "m.csv", index=False
    )
    common = ["--crop", "none", "--num-names", "30", "--name-decoys", "200", "--templates",
              "0,3,7", "--quiet"]
    photo = str(tmp_path / "people" / "Ada Lovelace" / "0.png")
    check = runner.invoke(
        app,
        [
            "check",
            photo,
            "--name",
            "Ada Lovelace",
            "--json",
            "--model",
            served,
            "--api-key",
            "k3y",
            *common,
        ],
    )
    assert check.exit_code == 0, check.output
    payload = json.loads(check.stdout)
    assert payload["extra"]["remote_usage"]["queries"] == 3
    assert "3 queries (photo x template)" in check.stderr
    local = runner.invoke(
        app,
        [
            "check",
            photo,
            "--name",
            "Ada Lovelace",
            "--json",
            "--model",
            spec,
            "--no-cache",
            *common,
        ],
    )
    assert payload["templates"] == json.loads(local.stdout)["templates"]

    def audit(model: str, out: str, *extra: str):
        outcome = runner.invoke(
            app,
            [
                "audit",
                "--people",
                str(tmp_path / "people"),
                "--model",
                model,
                "--out",
                str(tmp_path / out),
                "--membership",
                str(tmp_path / "m.csv"),
                *common,
                *extra,
            ],
        )
        assert outcome.exit_code == 0, outcome.output
        return outcome, pd.read_csv(tmp_path / out / "results.csv")

    remote, remote_results = audit(served, "remote", "--api-key", "k3y")
    assert "12 queries (photo x template)" in remote.stderr
    _, local_results = audit(spec, "local", "--no-cache")
    # the same per-person results, but for the name and text-only tests, which need the text
    # tower (the name tests' decoys are matched on its familiarity with each part of the name);
    # the name test against the paper's decoys, kept beside them, agrees
    text = [c for c in local_results if "text" in c]
    text += [c for c in local_results if c.startswith(("p_name", "z_name", "q_name", "name_"))
             and "paper_null" not in c]
    text += ["n_name_null", "null", "null_reason", "n_decoys", "n_given_kept", "n_family_kept",
             "n_recombined", "decoy_source", "verdict", "p_person", "q_person"]
    text += [c for c in local_results if c.endswith("_holds")]  # they combine the name tests
    assert remote_results["p_text"].isna().all() and remote_results["text_verdict"].eq(False).all()
    assert remote_results["p_name"].isna().all() and remote_results["null"].eq("closed_box").all()
    assert local_results["null"].eq("full_name").all()
    pd.testing.assert_frame_equal(
        remote_results.drop(columns=text, errors="ignore"), local_results.drop(columns=text)
    )
    denied = runner.invoke(
        app, ["check", photo, "--name", "A B", "--model", served, *common], env={"IDIA_API_KEY": ""}
    )
    assert denied.exit_code == 2 and "refused the API key" in denied.output
