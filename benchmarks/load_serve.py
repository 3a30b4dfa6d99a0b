"""Loopback load test of ``idia serve``, with and without hostile traffic: a bounded number
of attack-shaped requests from a fixed number of concurrent clients, first alone, then again
while hostile clients send oversized unauthenticated bodies, slow bodies (slowloris) and
pixel bombs; prints, side by side, the legitimate requests' errors, latency percentiles and
throughput and the server's memory in each phase, and what the hostile requests got. Exits
non-zero on errors, on answers that differ between requests, on memory growth
(``--max-growth-mib``) or on a hostile request that was not refused.

    python benchmarks/load_serve.py                      # tiny random model, 500 x 16
    python benchmarks/load_serve.py --model SPEC --requests 200 --concurrency 8
    python benchmarks/load_serve.py --no-hostile         # the legitimate load only
    python benchmarks/load_serve.py --url http://127.0.0.1:8000   # a server already running

Each request is what ``idia check`` sends for one photo: one face-sized PNG and the 21 paper
templates x ``--names`` candidate prompts. The first request (which encodes the prompts) is a
warm-up and is reported apart. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import multiprocessing
import os
import queue
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from idia.names import build_candidates
from idia.prompts import PAPER_TEMPLATES, render_prompts

TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@dataclass
class LoadStats:
    ok: int = 0
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    warmup_s: float = 0.0
    wall_s: float = 0.0
    distinct_answers: int = 0
    rss_mib: list[float] = field(default_factory=list)  # server memory samples over the run
    server_cpu_s: float | None = None  # CPU time the server used over the run

    @property
    def memory_growth_mib(self) -> float:
        """Peak server memory in the last third of the run minus that of the first third."""
        if not self.rss_mib:
            return 0.0
        third = max(1, len(self.rss_mib) // 3)
        return max(self.rss_mib[-third:]) - max(self.rss_mib[:third])

    @property
    def p50(self) -> float:
        return float(np.percentile(self.latencies, 50)) if self.latencies else 0.0

    @property
    def p95(self) -> float:
        return float(np.percentile(self.latencies, 95)) if self.latencies else 0.0

    @property
    def p99(self) -> float:
        return float(np.percentile(self.latencies, 99)) if self.latencies else 0.0

    def report(self) -> str:
        lat = np.array(self.latencies) * 1000
        lines = [
            f"requests: {self.ok} ok, {self.errors} errors"
            + (f" (e.g. {self.error_examples[0]})" if self.error_examples else ""),
            f"warm-up (encodes the prompts): {self.warmup_s * 1000:.0f} ms",
        ]
        if len(lat):
            lines.append(
                f"latency ms: p50 {np.percentile(lat, 50):.1f}  p95 {np.percentile(lat, 95):.1f}"
                f"  p99 {np.percentile(lat, 99):.1f}  max {lat.max():.1f}"
            )
            lines.append(
                f"throughput: {self.ok / self.wall_s:.1f} requests/s over {self.wall_s:.1f} s"
            )
        lines.append(f"answers identical across requests: {self.distinct_answers == 1}")
        if self.rss_mib:
            lines.append(
                f"server RSS MiB: after warm-up {self.rss_mib[0]:.0f}, end {self.rss_mib[-1]:.0f}, "
                f"growth from the first to the last third of the run {self.memory_growth_mib:+.0f}"
            )
        return "\n".join(lines)


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def side_by_side(phases: dict[str, LoadStats]) -> str:
    """The legitimate requests' figures in each phase (alone, under each kind of hostile
    traffic, under all of it), one column a phase."""

    def row(label: str, value) -> list[str]:
        return [label, *(value(stats) for stats in phases.values())]

    rows = [
        ["legitimate requests", *phases],
        row("requests ok / errors", lambda st: f"{st.ok} / {st.errors}"),
        *[
            row(f"latency {name} ms", lambda st, name=name: f"{getattr(st, name) * 1000:.1f}")
            for name in ("p50", "p95", "p99")
        ],
        row("throughput requests/s", lambda st: f"{st.ok / st.wall_s:.1f}"),
        row("server CPU s over the run", lambda st: f"{st.server_cpu_s or 0:.1f}"),
        row("server RSS MiB, peak", lambda st: f"{max(st.rss_mib, default=0):.0f}"),
        row("answers identical", lambda st: str(st.distinct_answers == 1)),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )


def attack_request(names: int, image_side: int) -> bytes:
    """One photo and the paper's 21 prompt sets, as RemoteModel sends them."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (image_side, image_side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    candidates = build_candidates(["Ada Lovelace"], names, seed=0)
    groups = [render_prompts([t], candidates.names) for t in PAPER_TEMPLATES]
    payload = {"images": [base64.b64encode(buffer.getvalue()).decode()], "text_groups": groups}
    return json.dumps(payload).encode()


def run_load(
    url: str,
    requests: int = 500,
    concurrency: int = 16,
    names: int = 1000,
    image_side: int = 112,
    server_pid: int | None = None,
    timeout: float = 120.0,
    api_key: str | None = None,
) -> LoadStats:
    """Send ``requests`` identical attack requests, ``concurrency`` at a time, to ``url``."""
    check_loopback(url)
    body = attack_request(names, image_side)
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    stats = LoadStats()
    answers: set[str] = set()
    lock = threading.Lock()
    done = threading.Event()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=url, timeout=timeout, limits=limits) as client:
        start = time.perf_counter()
        warm = client.post("/v1/zero-shot", content=body, headers=headers)
        stats.warmup_s = time.perf_counter() - start
        warm.raise_for_status()
        answers.add(warm.text)

        def sample_memory() -> None:
            while server_pid is not None and not done.is_set():
                value = rss_mib(server_pid)
                if value is not None:
                    stats.rss_mib.append(value)
                done.wait(0.1)

        def one(_: int) -> None:
            began = time.perf_counter()
            try:
                response = client.post("/v1/zero-shot", content=body, headers=headers)
                response.raise_for_status()
            except httpx.HTTPError as err:
                with lock:
                    stats.errors += 1
                    stats.error_examples.append(f"{type(err).__name__}: {err}")
                return
            elapsed = time.perf_counter() - began
            with lock:
                stats.ok += 1
                stats.latencies.append(elapsed)
                answers.add(response.text)

        sampler = threading.Thread(target=sample_memory, daemon=True)
        sampler.start()
        cpu_before = cpu_seconds(server_pid) if server_pid else None
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(requests)))
        stats.wall_s = time.perf_counter() - start
        cpu_after = cpu_seconds(server_pid) if server_pid else None
        if cpu_before is not None and cpu_after is not None:
            stats.server_cpu_s = cpu_after - cpu_before
        done.set()
        sampler.join()
    stats.distinct_answers = len(answers)
    return stats


def check_loopback(url: str) -> None:
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError("the load test only targets loopback (127.0.0.1)")


def flat_png(width: int, height: int) -> str:
    """A few kilobytes of PNG that decode to ``width x height`` pixels: a pixel bomb."""
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


def raw_post(url: str, headers: dict[str, str], chunks, pause: float, timeout: float) -> str:
    """POST by hand: the headers, then body chunks with ``pause`` seconds between them,
    stopping as soon as the server answers. Returns the status, or what went wrong."""
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"POST /v1/zero-shot HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(request)
            for chunk in chunks:
                if select.select([sock], [], [], pause)[0]:
                    break  # the server answered before the body was complete
                sock.sendall(chunk)
            answer = sock.recv(64)
    except (ConnectionResetError, BrokenPipeError):
        return "cut off"  # the server closed the connection while the client still sent
    except OSError as err:
        return type(err).__name__
    return answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "cut off"


class HostileTraffic:
    """Hostile clients, each in a loop until stopped: ``oversized`` clients declaring the
    largest body the server allows and streaming it without a key; ``slow`` clients with the
    key sending one byte of body a second (slowloris); ``bombs`` clients with the key sending
    small PNGs that decode to huge images, one per image limit and one per request limit.
    With ``own_process`` (forked: call it while this process runs no other thread) they
    compete with the measuring clients for the CPU but not for a GIL; else they are threads
    here. ``outcomes`` counts, per kind, the statuses they got."""

    def __init__(
        self,
        url: str,
        api_key: str,
        max_body_bytes: int,
        oversized: int = 2,
        slow: int = 8,
        bombs: int = 2,
        own_process: bool = True,
    ) -> None:
        check_loopback(url)
        self.url = url
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.workers = {"oversized, no key": oversized, "slow body": slow, "pixel bomb": bombs}
        self.outcomes: dict[str, Counter] = {kind: Counter() for kind in self.workers}
        self._lock = threading.Lock()
        if own_process:
            context = multiprocessing.get_context("fork")
            self._stop, self._results = context.Event(), context.Queue()
            self._runner = context.Process(target=self._run, daemon=True)
        else:
            self._stop, self._results = threading.Event(), queue.Queue()
            self._runner = threading.Thread(target=self._run, daemon=True)
        big = flat_png(8192, 8192)  # one image over the per-image pixel limit
        many = [flat_png(2048, 2048)] * 64  # each within it, together far over the request's
        self._bombs = [
            json.dumps({"images": [big], "texts": ["a", "b"]}).encode(),
            json.dumps({"images": many, "texts": ["a", "b"]}).encode(),
        ]

    def __enter__(self) -> HostileTraffic:
        self._began = time.perf_counter()
        self._runner.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.outcomes = self._results.get(timeout=600)
        self._runner.join(60)
        self.seconds = time.perf_counter() - self._began

    def _run(self) -> None:
        """The hostile clients until told to stop, then their tally."""
        threads = [
            threading.Thread(target=self._loop, args=(kind, i), daemon=True)
            for kind, count in self.workers.items()
            for i in range(count)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._results.put(self.outcomes)

    def _loop(self, kind: str, index: int) -> None:
        json_type = {"Content-Type": "application/json"}
        key = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self._stop.is_set():
                if kind == "oversized, no key":
                    size = self.max_body_bytes
                    headers = {**json_type, "Content-Length": str(size)}
                    chunk = b"A" * 2**20
                    outcome = raw_post(self.url, headers, [chunk] * (size // len(chunk)), 0, 30)
                elif kind == "slow body":
                    headers = {**json_type, **key, "Content-Length": str(2**20)}
                    outcome = raw_post(self.url, headers, iter(lambda: b"A", None), 1.0, 300)
                else:
                    body = self._bombs[index % 2]
                    outcome = str(
                        client.post(
                            "/v1/zero-shot", content=body, headers={**json_type, **key}
                        ).status_code
                    )
                with self._lock:
                    self.outcomes[kind][outcome] += 1

    def report(self) -> str:
        seconds = getattr(self, "seconds", 0.0)
        lines = [f"hostile requests over {seconds:.0f} s (what they got):"]
        for kind, outcomes in self.outcomes.items():
            if self.workers[kind]:
                got = ", ".join(f"{status} x {n}" for status, n in sorted(outcomes.items()))
                lines.append(f"  {kind} ({self.workers[kind]} clients): {got or 'nothing yet'}")
        return "\n".join(lines)

    def refused(self) -> bool:
        """Every hostile request was refused (never answered 200), and each kind was seen."""
        return all(
            outcomes and "200" not in outcomes
            for kind, outcomes in self.outcomes.items()
            if self.workers[kind]
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tiny_model_spec(folder: Path) -> str:
    """A random tiny open_clip model saved as a checkpoint, so the server loads it by spec."""
    import open_clip
    import torch

    config = folder / "load-tiny-clip.json"
    config.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("load-tiny-clip")
    checkpoint = folder / "tiny.pt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    return f"open_clip:{config}:{checkpoint}"


def failed(stats: LoadStats, max_growth_mib: float) -> bool:
    return (
        stats.errors > 0
        or stats.distinct_answers != 1
        or (stats.memory_growth_mib > max_growth_mib)
    )


def measure(url: str, args: argparse.Namespace, server_pid: int | None, api_key: str) -> bool:
    """The legitimate load alone, then under each kind of hostile traffic, then under all of
    it; prints the phases side by side; True if anything failed."""
    info = httpx.get(f"{url}/info", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    info.raise_for_status()
    load = dict(
        requests=args.requests,
        concurrency=args.concurrency,
        names=args.names,
        image_side=args.image_side,
        server_pid=server_pid,
        api_key=api_key,
    )
    phases = {"alone": run_load(url, **load)}
    print(f"legitimate requests alone:\n{phases['alone'].report()}\n")
    if args.no_hostile:
        return failed(phases["alone"], args.max_growth_mib)
    clients = {
        "oversized": args.oversized_clients,
        "slow": args.slow_clients,
        "bombs": args.bomb_clients,
    }
    mixes = {f"+{kind}": {kind: n} for kind, n in clients.items() if n}
    mixes["+all"] = clients
    refused = True
    for phase, mix in mixes.items():
        hostile = HostileTraffic(
            url,
            api_key,
            info.json()["limits"]["max_body_bytes"],
            **{kind: mix.get(kind, 0) for kind in clients},
        )
        with hostile:
            time.sleep(2)  # the hostile clients get going first
            phases[phase] = run_load(url, **load)
        print(f"legitimate requests, {phase}:\n{phases[phase].report()}\n{hostile.report()}\n")
        refused = refused and hostile.refused()
    print(side_by_side(phases))
    return not refused or any(failed(st, args.max_growth_mib) for st in phases.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--names", type=int, default=1000, help="candidate names per template")
    parser.add_argument("--image-side", type=int, default=112)
    parser.add_argument("--model", help="model spec to serve (default: a tiny random model)")
    parser.add_argument("--url", help="load a server already running on 127.0.0.1 instead")
    parser.add_argument("--api-key", help="with --url: the server's key")
    parser.add_argument("--server-pid", type=int, help="with --url: sample this process's memory")
    parser.add_argument(
        "--max-growth-mib", type=float, default=64, help="fail if server memory grows more"
    )
    parser.add_argument("--no-hostile", action="store_true", help="the legitimate load only")
    parser.add_argument("--oversized-clients", type=int, default=2)
    parser.add_argument("--slow-clients", type=int, default=8)
    parser.add_argument("--bomb-clients", type=int, default=2)
    parser.add_argument(
        "--body-timeout", type=float, default=10, help="the server's --body-timeout, seconds"
    )
    args = parser.parse_args()

    if args.url:
        sys.exit(1 if measure(args.url, args, args.server_pid, args.api_key or "") else 0)
    api_key = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp:
        spec = args.model or tiny_model_spec(Path(tmp))
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from idia.cli import main; main()",
                "serve",
                "--model",
                spec,
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--body-timeout",
                str(args.body_timeout),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "IDIA_SERVE_API_KEY": api_key},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"the server did not start (exit code {server.poll()})")
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            print(
                f"idia serve --model {spec} --body-timeout {args.body_timeout:g} (with an API "
                f"key) on {url}: {args.requests} requests, {args.concurrency} concurrent, "
                f"1 image x 21 x {args.names} prompts each\n"
            )
            bad = measure(url, args, server.pid, api_key)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
