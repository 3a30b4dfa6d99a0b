"""Loopback load test of ``idia serve``: a bounded number of attack-shaped requests from a
fixed number of concurrent clients; prints errors, latency percentiles, throughput and the
server's memory over the run, then stops the server. Exits non-zero on errors, on answers
that differ between requests, or on memory growth (``--max-growth-mib``).

    python benchmarks/load_serve.py                      # tiny random model, 500 x 16
    python benchmarks/load_serve.py --model SPEC --requests 200 --concurrency 8
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
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
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
) -> LoadStats:
    """Send ``requests`` identical attack requests, ``concurrency`` at a time, to ``url``."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError("the load test only targets loopback (127.0.0.1)")
    body = attack_request(names, image_side)
    headers = {"Content-Type": "application/json"}
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
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(requests)))
        stats.wall_s = time.perf_counter() - start
        done.set()
        sampler.join()
    stats.distinct_answers = len(answers)
    return stats


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--names", type=int, default=1000, help="candidate names per template")
    parser.add_argument("--image-side", type=int, default=112)
    parser.add_argument("--model", help="model spec to serve (default: a tiny random model)")
    parser.add_argument("--url", help="load a server already running on 127.0.0.1 instead")
    parser.add_argument("--server-pid", type=int, help="with --url: sample this process's memory")
    parser.add_argument(
        "--max-growth-mib", type=float, default=64, help="fail if server memory grows more"
    )
    args = parser.parse_args()

    if args.url:
        stats = run_load(
            args.url, args.requests, args.concurrency, args.names, args.image_side, args.server_pid
        )
        print(stats.report())
        sys.exit(1 if failed(stats, args.max_growth_mib) else 0)
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
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
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
                f"idia serve --model {spec} on {url}: {args.requests} requests, "
                f"{args.concurrency} concurrent, 1 image x 21 x {args.names} prompts each"
            )
            stats = run_load(
                url, args.requests, args.concurrency, args.names, args.image_side, server.pid
            )
            print(stats.report())
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    sys.exit(1 if failed(stats, args.max_growth_mib) else 0)


if __name__ == "__main__":
    main()
