"""Turn latency, throughput, memory, training and start-up time, each next to a same-run baseline.

The baseline is the project ``rasa init`` creates (Rasa's own starter bot, copied from the
installed rasa package), trained and served on the same machine in the same run, the way Rasa
serves it by default (in-memory tracker store, no action server). Our assistant runs as
``make run`` runs it: Redis tracker and lock store with AOF, the event broker to the handoff
service, the action server in the loop, the handoff service up.

Measured, in this order:

1. Training from scratch (empty Rasa cache, fresh output dir): ours and the baseline.
2. Start to ready: from spawning ``rasa run`` until ``/status`` reports the model, and until the
   first message is answered; the same for the action server and the handoff service.
3. Memory (VmRSS of the process and its children) of the Rasa server, the action server and the
   handoff service: idle (after a warm-up) and the peak under load; the baseline Rasa server too.
4. Turn latency: multi-turn conversations over the REST channel, one at a time, ours and the
   baseline's interleaved (so both see the same noise); p50/p95/p99 per turn and the ratio.
5. Throughput: simulated customers, each with its own conversations and a think time, added in
   steps until p95 passes 500 ms (or errors pass 1 %), then finer, longer steps from the last
   level that held towards it (the knee); turns per second, p95, error rate, the load average and
   each process's CPU per turn per step; the sustained figure is the best step that kept p95
   under 500 ms. The same ramp for our Rasa server as two Sanic worker processes (as ``make run``
   serves it) and for the baseline.
6. A profile under load: py-spy on every process of ours during one step at the knee
   (scripts/sampling_profile.py).

Writes results/bench_turns.json; ``scripts/bench_report.py`` turns it into docs/benchmarks.md.

    PYTHONPATH=. .venv/bin/python scripts/bench_turns.py            # everything (15-30 min)
    PYTHONPATH=. .venv/bin/python scripts/bench_turns.py --quick    # smaller, for a try-out
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from scripts.benchlib import RESULTS, cpu_seconds, machine, mib, percentiles, rss_bytes  # noqa: E402
from scripts.stack import RedisServer, Stack, _wait_http, free_port  # noqa: E402

P95_LIMIT_S = 0.500
MAX_ERROR_RATE = 0.01

# Conversations a customer really has, all solved by the bot (no handoff: a paused conversation
# would no longer be answered by the bot, which is not what a turn benchmark measures).
OURS: Sequence[Sequence[str]] = (
    ("hallo", "waar blijft mijn bestelling nou", "48213377", "3511 AB", "dank je wel"),
    ("hi", "my parcel is late, it should have come days ago", "51937204", "2000", "thanks"),
    ("goedemorgen", "mijn internet doet het al de hele ochtend niet", "39481726", "3581 KP"),
    ("hello", "my tv has no signal since this morning", "45678912", "9000", "ok thank you"),
    ("wanneer zijn jullie open?", "en op zaterdag?", "bedankt"),
    ("what are your opening hours", "thanks, bye"),
)
# The starter bot's own stories: greet, mood, did that help, goodbye.
BASELINE: Sequence[Sequence[str]] = (
    ("hello", "I am sad", "yes", "bye"),
    ("hi there", "I am great", "goodbye"),
    ("hey", "very sad", "no", "bye bye"),
)


# -- servers ----------------------------------------------------------------------------------
def rasa_env(cache_dir: Path) -> Dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", RASA_TELEMETRY_ENABLED="false",
                SQLALCHEMY_SILENCE_UBER_WARNING="1", RASA_CACHE_DIRECTORY=str(cache_dir))


def train(project: Path, out: Path, name: str, cache_dir: Path, log: Path, ours: bool) -> Tuple[Path, float]:
    """Trains from scratch (empty cache); returns the model and the wall-clock seconds."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    cache_dir.mkdir(parents=True)
    args = [sys.executable, "-m", "rasa", "train", "--out", str(out), "--fixed-model-name", name]
    if ours:
        args += ["--config", "config.yml", "--domain", "domain", "--data", "data"]
    start = time.monotonic()
    with open(log, "wb") as handle:
        subprocess.run(args, cwd=project, env=rasa_env(cache_dir), stdout=handle, stderr=subprocess.STDOUT, check=True)
    elapsed = time.monotonic() - start
    model = out / f"{name}.tar.gz"
    if not model.exists():
        raise RuntimeError(f"training {project} produced no model; see {log}")
    return model, elapsed


def baseline_project(workdir: Path) -> Path:
    """A copy of the project `rasa init` creates (rasa/cli/initial_project)."""
    import rasa.cli

    source = Path(rasa.cli.__file__).parent / "initial_project"
    target = workdir / "baseline"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@dataclass
class Baseline:
    """The starter bot served by `rasa run` with its defaults."""

    project: Path
    model: Path
    log_dir: Path
    port: int = field(default_factory=free_port)
    proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log_dir / "baseline-rasa.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rasa", "run", "--model", str(self.model), "--port", str(self.port),
             "--enable-api"],
            cwd=self.project, env=rasa_env(self.log_dir / "baseline-cache"), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        status = _wait_http(f"{self.url}/status", timeout=300, proc=self.proc)
        if not status.get("model_file"):
            raise RuntimeError(f"baseline Rasa started without a model: {status}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)


# -- one conversation at a time --------------------------------------------------------------
class TurnError(RuntimeError):
    pass


def say(session: requests.Session, url: str, sender: str, text: str) -> Tuple[float, List[Dict[str, Any]]]:
    start = time.perf_counter()
    response = session.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=30)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise TurnError(f"HTTP {response.status_code}: {response.text[:200]}")
    replies = response.json()
    if not replies:
        raise TurnError(f"no reply to {text!r} from {url}")
    return elapsed, replies


def conversation(session: requests.Session, url: str, script: Sequence[str]) -> List[float]:
    sender = f"bench-{uuid.uuid4().hex}"
    return [say(session, url, sender, text)[0] for text in script]


def first_answer_seconds(url: str, text: str, started: float, timeout: float = 120) -> float:
    """Seconds from ``started`` until the server answers a first message."""
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        while time.monotonic() < deadline:
            try:
                say(session, url, f"bench-first-{uuid.uuid4().hex}", text)
                return time.monotonic() - started
            except (requests.RequestException, TurnError):
                time.sleep(0.1)
    raise TimeoutError(f"{url} answered nothing within {timeout}s")


def interleaved_latency(ours_url: str, base_url: str, conversations: int) -> Dict[str, List[float]]:
    """Sequential conversations, ours and the baseline's taking turns."""
    timings: Dict[str, List[float]] = {"ours": [], "baseline": []}
    with requests.Session() as ours, requests.Session() as base:
        for i in range(conversations):
            timings["ours"] += conversation(ours, ours_url, OURS[i % len(OURS)])
            timings["baseline"] += conversation(base, base_url, BASELINE[i % len(BASELINE)])
    return timings


# -- load ------------------------------------------------------------------------------------
@dataclass
class Step:
    customers: int
    seconds: float
    latencies: List[float] = field(default_factory=list)
    errors: int = 0
    answered_with_warmup: int = 0

    def report(self) -> Dict[str, Any]:
        turns = len(self.latencies) + self.errors
        return {
            "customers": self.customers,
            "turns_per_s": round(len(self.latencies) / self.seconds, 1),
            "error_rate": round(self.errors / turns, 4) if turns else 0.0,
            "errors": self.errors,
            **percentiles(self.latencies),
        }



def within_limits(report: Dict[str, Any]) -> bool:
    """p95 under the limit and errors under the rate: the step is sustained."""
    return report.get("p95_ms", 1e9) <= P95_LIMIT_S * 1000 and report["error_rate"] <= MAX_ERROR_RATE


async def _customer(session: Any, url: str, scripts: Sequence[Sequence[str]], think: float, rng: random.Random,
                    stop_at: float, record_from: float, step: Step) -> None:
    import aiohttp

    while time.monotonic() < stop_at:
        sender = f"load-{uuid.uuid4().hex}"
        for text in scripts[rng.randrange(len(scripts))]:
            if time.monotonic() >= stop_at:
                return
            start = time.monotonic()
            ok = False
            try:
                async with session.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                                        timeout=aiohttp.ClientTimeout(total=30)) as response:
                    ok = response.status == 200 and bool(await response.json())
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                ok = False
            end = time.monotonic()
            step.answered_with_warmup += ok
            if start >= record_from and end <= stop_at:
                if ok:
                    step.latencies.append(end - start)
                else:
                    step.errors += 1
            # Think time: customers read the answer and type (exponential, mean `think`).
            await asyncio.sleep(min(rng.expovariate(1.0 / think), think * 5))


async def _run_step(urls: Sequence[str], scripts: Sequence[Sequence[str]], customers: int, seconds: float,
                    warmup: float, think: float, seed: int) -> Step:
    import aiohttp

    step = Step(customers=customers, seconds=seconds)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        now = time.monotonic()
        rng = random.Random(seed)
        tasks = [
            # Each customer stays on one server (sticky sessions, as a load balancer does).
            asyncio.create_task(_customer(session, urls[i % len(urls)], scripts, think, random.Random(rng.random()),
                                          now + warmup + seconds, now + warmup, step))
            for i in range(customers)
        ]
        await asyncio.gather(*tasks)
    return step


def run_step(urls: Sequence[str], scripts: Sequence[Sequence[str]], customers: int, seconds: float,
             warmup: float, think: float, seed: int, pids: Optional[Dict[str, int]] = None) -> Dict[str, Any]:
    """One load step; with ``pids``, also the CPU milliseconds per answered turn of each process."""
    cpu_before = {name: cpu_seconds(pid) for name, pid in (pids or {}).items()}
    load_1m = round(os.getloadavg()[0], 2)
    step = asyncio.run(_run_step(urls, scripts, customers, seconds, warmup, think, seed=seed))
    report = step.report()
    answered = max(1, step.answered_with_warmup)
    report["seconds"] = seconds
    report["answered"] = step.answered_with_warmup
    report["load_1m_at_start"] = load_1m
    report["cpu_ms_per_turn"] = {name: round(1000 * (cpu_seconds(pid) - cpu_before[name]) / answered, 1)
                                 for name, pid in (pids or {}).items()}
    print(f"    {customers:4d} customers ({seconds:.0f} s): {report['turns_per_s']:6.1f} turns/s  p50 "
          f"{report.get('p50_ms', 0):6.1f}  p95 {report.get('p95_ms', 0):7.1f} ms  errors {report['error_rate']:.2%}"
          f"  cpu ms/turn {report['cpu_ms_per_turn']}", flush=True)
    return report


def ramp(urls: Sequence[str], scripts: Sequence[Sequence[str]], levels: Sequence[int], seconds: float,
         warmup: float, think: float, pids: Optional[Dict[str, int]] = None,
         refine_seconds: Optional[float] = None) -> List[Dict[str, Any]]:
    """Finds the knee: adds customers level by level until p95 passes the limit, then, with
    ``refine_seconds``, walks from the last level that held towards the first that did not in
    about five finer steps of ``refine_seconds`` each (longer than the coarse ones, so each is
    stable), stopping at the first that does not hold. Steps are returned by number of customers.
    """
    steps: List[Dict[str, Any]] = []
    last_good, first_bad = 0, None
    for i, customers in enumerate(levels):
        report = run_step(urls, scripts, customers, seconds, warmup, think, seed=i, pids=pids)
        steps.append(report)
        if not within_limits(report):
            first_bad = customers
            break
        last_good = customers
    if refine_seconds and first_bad is not None and first_bad - last_good > 1:
        stride = max(1, round((first_bad - last_good) / 5))
        print(f"    refining between {last_good} and {first_bad} customers (every {stride}):", flush=True)
        for k, customers in enumerate(range(last_good + stride, first_bad, stride)):
            report = run_step(urls, scripts, customers, refine_seconds, warmup, think, seed=1000 + k, pids=pids)
            report["refined"] = True
            steps.append(report)
            if not within_limits(report):
                break
    return sorted(steps, key=lambda s: (s["customers"], bool(s.get("refined"))))


def sustained(steps: List[Dict[str, Any]]) -> Dict[str, Any]:
    good = [s for s in steps if within_limits(s)]
    if not good:
        return {"turns_per_s": 0.0}
    best = max(good, key=lambda s: s["turns_per_s"])
    return {"turns_per_s": best["turns_per_s"], "customers": best["customers"], "p95_ms": best["p95_ms"],
            "error_rate": best["error_rate"]}


class MemorySampler:
    """Samples the RSS of named processes every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, pids: Dict[str, int], interval: float = 0.5) -> None:
        self.pids = pids
        self.peak = {name: 0 for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_bytes(pid))
            self._stop.wait(0.5)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# -- main ------------------------------------------------------------------------------------
def measure_latency(report: Dict[str, Any], ours_url: str, base_url: str, conversations: int) -> None:
    """Sequential conversations, ours and the baseline's interleaved; p50/p95/p99 and ratios."""
    print(f"turn latency: {conversations} conversations each, one at a time...", flush=True)
    timings = interleaved_latency(ours_url, base_url, conversations)
    ours_p, base_p = percentiles(timings["ours"]), percentiles(timings["baseline"])
    report["latency"] = {
        "ours": ours_p, "baseline": base_p,
        "ratio_p50": round(ours_p["p50_ms"] / base_p["p50_ms"], 2),
        "ratio_p95": round(ours_p["p95_ms"] / base_p["p95_ms"], 2),
        "ratio_p99": round(ours_p["p99_ms"] / base_p["p99_ms"], 2),
        "turns_per_conversation": {"ours": round(len(timings["ours"]) / conversations, 2),
                                   "baseline": round(len(timings["baseline"]) / conversations, 2)},
    }
    print(f"  ours p50 {ours_p['p50_ms']} p95 {ours_p['p95_ms']} p99 {ours_p['p99_ms']} ms; baseline p50 "
          f"{base_p['p50_ms']} p95 {base_p['p95_ms']} p99 {base_p['p99_ms']} ms; p95 ratio "
          f"{report['latency']['ratio_p95']}", flush=True)


#: What main() measures once the servers are up, in this order.
PARTS = ("latency", "ramp", "profile", "workers", "baseline-ramp")


def profile_under_load(urls: Sequence[str], customers: int, seconds: float, warmup: float, think: float,
                       pids: Dict[str, int], out_dir: Path) -> Dict[str, Any]:
    """One load step at ``customers`` with py-spy on every process (scripts/sampling_profile.py)."""
    from scripts import sampling_profile

    if not sampling_profile.available():
        print("  no py-spy in this environment: no profile under load (make install)", flush=True)
        return {}
    print(f"profile under load: {customers} customers, py-spy on {', '.join(pids)} for {seconds:.0f} s", flush=True)
    with sampling_profile.Sampler(pids, warmup + seconds, out_dir) as sampler:
        report = run_step(urls, OURS, customers, seconds, warmup, think, seed=2000, pids=pids)
    summaries = sampling_profile.summarise_all(sampler.outputs, max(1, report["answered"]))
    for name, summary in summaries.items():
        stages = ", ".join(f"{s['stage']} {s['gil_ms_per_turn']}" for s in summary["stages"][:8])
        print(f"  {name}: {summary['gil_ms_per_turn']} ms with the GIL per turn; {stages}", flush=True)
    return {"customers": customers, "step": report, "processes": summaries, "rate_hz": sampling_profile.RATE_HZ}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="serve this model instead of training one from scratch")
    parser.add_argument("--baseline-model", type=Path, help="serve this baseline model instead of training it")
    parser.add_argument("--conversations", type=int, default=60, help="sequential conversations per bot")
    parser.add_argument("--levels", default="5,10,20,30,40,50,60,80,100,120,150",
                        help="simulated customers per load step")
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--think", type=float, default=1.0, help="mean think time between a customer's turns (s)")
    parser.add_argument("--quick", action="store_true", help="fewer conversations and shorter steps")
    parser.add_argument("--workers", type=int, default=2,
                        help="also ramp with the Rasa server run as this many Sanic workers (1: only one process)")
    parser.add_argument("--refine-seconds", type=float, default=30.0,
                        help="length of each finer step between the last level that held and the first that did not")
    parser.add_argument("--profile-customers", type=int, default=40,
                        help="customers during the profile when the ramp did not run to find the knee")
    parser.add_argument("--profile-seconds", type=float, default=20.0,
                        help="py-spy on every process for this long at the knee of our ramp (0: no profile)")
    parser.add_argument("--no-baseline-load", action="store_true", help="skip the baseline's load ramp")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"what to measure after the start-up, comma-separated, of: {', '.join(PARTS)}")
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.step_seconds, args.refine_seconds, args.profile_seconds = 12, 8.0, 8.0, 8.0
    parts = set(args.parts.split(","))
    if args.no_baseline_load:
        parts.discard("baseline-ramp")
    if unknown := parts - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    levels = [int(x) for x in args.levels.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="bench-turns-"))
    logs = workdir / "logs"
    logs.mkdir()
    report: Dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                              "command": "make bench (scripts/bench_turns.py " + " ".join(sys.argv[1:]) + ")",
                              "targets": {"turn_p95_ratio_max": 1.1, "sustained_ratio_min": 1.2,
                                          "p95_limit_ms": P95_LIMIT_S * 1000, "rasa_rss_max_mib": 1536}}
    print(f"bench_turns: working in {workdir}", flush=True)

    # 1. training from scratch
    base_dir = baseline_project(workdir)
    training: Dict[str, Any] = {}
    if args.baseline_model:
        base_model = args.baseline_model.resolve()
    else:
        print("training the baseline (rasa init) from scratch...", flush=True)
        base_model, base_train = train(base_dir, workdir / "models", "baseline", workdir / "cache-baseline",
                                       logs / "train-baseline.log", ours=False)
        training["baseline_s"] = round(base_train, 1)
    if args.model:
        model = args.model.resolve()
    else:
        print("training ours from scratch...", flush=True)
        model, ours_train = train(ROOT, workdir / "models", "ours", workdir / "cache-ours", logs / "train-ours.log", ours=True)
        training["ours_s"] = round(ours_train, 1)
        if "baseline_s" in training:
            training["ratio"] = round(ours_train / training["baseline_s"], 2)
    report["training"] = training
    print(f"  training: {training}", flush=True)
    for cache in ("cache-baseline", "cache-ours"):  # hundreds of MB; the models and logs stay
        shutil.rmtree(workdir / cache, ignore_errors=True)

    redis = RedisServer(workdir / "redis", free_port())
    stack = Stack(redis_url=redis.url, rasa_port=free_port(), actions_port=free_port(), handoff_port=free_port(),
                  jwt_secret=uuid.uuid4().hex, log_dir=logs, model=model,
                  extra_env={"KLANTCONTACT_DB_URL": f"sqlite:///{workdir / 'helder.db'}"})
    baseline = Baseline(base_dir, base_model, logs)
    try:
        # 2. start to ready
        stack.ensure_seeded()
        start = time.monotonic()
        stack.start_handoff()
        handoff_ready = time.monotonic() - start
        start = time.monotonic()
        stack.start_actions()
        actions_ready = time.monotonic() - start
        start = time.monotonic()
        stack.start_rasa()
        ours_status = time.monotonic() - start
        ours_first = first_answer_seconds(stack.rasa_url, "hallo", start)
        start = time.monotonic()
        baseline.start()
        base_status = time.monotonic() - start
        base_first = first_answer_seconds(baseline.url, "hello", start)
        report["start"] = {
            "ours_rasa_status_s": round(ours_status, 1), "ours_rasa_first_answer_s": round(ours_first, 1),
            "ours_actions_s": round(actions_ready, 1), "ours_handoff_s": round(handoff_ready, 1),
            "baseline_rasa_status_s": round(base_status, 1), "baseline_rasa_first_answer_s": round(base_first, 1),
        }
        print(f"  start: {report['start']}", flush=True)

        assert baseline.proc is not None  # started above
        pids = {"rasa": stack.processes["rasa"].pid, "actions": stack.processes["actions"].pid,
                "handoff": stack.processes["handoff"].pid, "baseline_rasa": baseline.proc.pid}
        # Warm-up: every script once (first calls load lazily built parts).
        interleaved_latency(stack.rasa_url, baseline.url, max(len(OURS), len(BASELINE)))
        idle = {name: mib(rss_bytes(pid)) for name, pid in pids.items()}

        # 4. turn latency
        if "latency" in parts:
            measure_latency(report, stack.rasa_url, baseline.url, args.conversations)

        # 5. throughput (and 3. memory under load)
        ours_pids = {k: v for k, v in pids.items() if k != "baseline_rasa"}
        throughput: Dict[str, Any] = {"think_time_s": args.think, "step_seconds": args.step_seconds,
                                      "refine_seconds": args.refine_seconds}
        peaks: Dict[str, int] = {}
        if "ramp" in parts:
            print(f"throughput ramp (ours, 1 Rasa server), think time {args.think}s, {args.step_seconds:.0f}s per step:",
                  flush=True)
            with MemorySampler(ours_pids) as sampler:
                ours_steps = ramp([stack.rasa_url], OURS, levels, args.step_seconds, args.warmup_seconds, args.think,
                                  pids=ours_pids, refine_seconds=args.refine_seconds)
            throughput["ours"] = {"steps": ours_steps, "sustained": sustained(ours_steps)}
            peaks.update(sampler.peak)
        if "profile" in parts and args.profile_seconds > 0:
            knee = throughput.get("ours", {}).get("sustained", {}).get("customers") or args.profile_customers
            report["profile_under_load"] = profile_under_load(
                [stack.rasa_url], knee, args.profile_seconds, args.warmup_seconds, args.think, ours_pids, logs)
        if "workers" in parts and args.workers > 1:
            # The same server as one port served by several processes (Sanic workers).
            stack.stop_process("rasa")
            stack.start_rasa(workers=args.workers)
            first_answer_seconds(stack.rasa_url, "hallo", time.monotonic())
            with requests.Session() as session:  # warm-up: every worker once per script, about
                for _ in range(2 * args.workers):
                    for script in OURS:
                        conversation(session, stack.rasa_url, script)
            pids["rasa"] = stack.processes["rasa"].pid
            worker_pids = {k: v for k, v in pids.items() if k != "baseline_rasa"}
            idle[f"rasa_{args.workers}_workers"] = mib(rss_bytes(pids["rasa"]))
            print(f"throughput ramp (ours, 1 Rasa server with {args.workers} Sanic workers):", flush=True)
            with MemorySampler(worker_pids) as worker_sampler:
                worker_steps = ramp([stack.rasa_url], OURS, levels, args.step_seconds, args.warmup_seconds,
                                    args.think, pids=worker_pids, refine_seconds=args.refine_seconds)
            throughput[f"ours_{args.workers}_workers"] = {"steps": worker_steps, "sustained": sustained(worker_steps)}
            peaks[f"rasa_{args.workers}_workers"] = worker_sampler.peak["rasa"]
        if "baseline-ramp" in parts:
            print("throughput ramp (baseline, 1 Rasa server):", flush=True)
            base_pids = {"baseline_rasa": pids["baseline_rasa"]}
            with MemorySampler(base_pids) as base_sampler:
                base_steps = ramp([baseline.url], BASELINE, levels, args.step_seconds, args.warmup_seconds,
                                  args.think, pids=base_pids, refine_seconds=args.refine_seconds)
            throughput["baseline"] = {"steps": base_steps, "sustained": sustained(base_steps)}
            peaks.update(base_sampler.peak)
        report["throughput"] = throughput
        report["memory_mib"] = {name: {"idle": idle[name], "peak_under_load": mib(peaks[name])}
                                for name in idle if name in peaks}
        for name, value in throughput.items():
            if isinstance(value, dict) and "sustained" in value:
                print(f"  sustained ({name}): {value['sustained']}", flush=True)
        print(f"  memory (MiB): {report['memory_mib']}", flush=True)
    finally:
        baseline.stop()
        stack.stop()
        redis.stop()

    out = RESULTS / "bench_turns.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out}; logs in {logs}")


if __name__ == "__main__":
    main()
