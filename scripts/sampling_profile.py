"""Where each process of the stack spends its CPU under load: py-spy samples, summarised per turn.

:class:`Sampler` runs ``py-spy record --gil`` on every named process for a given time, while
the caller drives load: each sample is the stack of the thread that holds the GIL at that moment
(none: no sample). Only the GIL holder, because the GIL is what one Python process cannot have
more of (it is the resource a turn spends), and because py-spy's idle detection counts waiting
thread-pool workers and an event loop in epoll as busy. The process is paused for each sample
(``--nonblocking`` reads stacks that are changing meanwhile and mixed frames of different moments
into one stack); the benchmark reports the throughput of the profiled step next to the ramp's.
Native work outside the GIL (TensorFlow's own threads) is not in these figures; the benchmark's
/proc CPU per turn is.
:func:`summarise` reads the raw (collapsed) stacks and gives, per process:

- ``gil_ms_per_turn``: samples ÷ rate ÷ answered turns, the time per turn the process ran Python
  (or native code called with the GIL held);
- ``stages``: for each stage of :data:`STAGES` (a path fragment of the code that is that stage),
  the share of the samples whose stack passes through it and its GIL ms per turn; stages overlap
  (the action server's request is inside Rasa's event loop), so shares need not add up;
- ``top_self``: the functions that were on top of the stack most often (their own time).

Used by scripts/bench_turns.py at the knee of the throughput ramp; the figures land in
docs/benchmarks.md ("Profile under load").
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

RATE_HZ = 50
ROOT = Path(__file__).resolve().parent.parent

#: (stage, fragment of the file path of the code that is that stage, or "path:function"); a stage
#: may have several fragments (Rasa's code and ours in its place).
STAGES: Sequence[Tuple[str, str]] = (
    ("NLU: parse (whole pipeline)", "rasa/core/processor.py:parse_message"),
    ("NLU: TensorFlow (DIET, response selector)", "tensorflow/"),
    ("NLU: spaCy tokenizer", "spacy/"),
    ("NLU: scikit-learn (second opinion)", "sklearn/"),
    ("policies (rules, memoization)", "rasa/core/policies/"),
    ("custom actions: the HTTP call (aiohttp)", "rasa/utils/endpoints.py:request"),
    ("  of which a new connection to the action server", "aiohttp/connector.py:_create_connection"),
    ("action responses validated (jsonschema)", "jsonschema/"),
    ("event classes looked up (Event.resolve_by_type)", "rasa/shared/core/events.py:resolve_by_type"),
    ("event classes looked up (Event.resolve_by_type)", "bot/event_lookup.py:resolve_by_type"),
    ("tracker store (Redis)", "tracker_store.py"),
    ("lock store (Redis)", "rasa/core/lock_store.py"),
    ("event broker (Redis stream)", "event_broker.py"),
    ("events (de)serialised", "rasa/shared/core/events.py"),
    ("domain and slots", "rasa/shared/core/domain.py"),
    ("Sanic (HTTP server)", "sanic/"),
    ("socket.io / engine.io", "socketio/"),
    ("aiohttp", "aiohttp/"),
    ("redis client", "redis/"),
    ("JSON", "/json/"),
    ("logging", "/logging/"),
    ("structlog", "structlog/"),
    ("rasa_sdk: the request", "rasa_sdk/endpoint.py"),
    ("rasa_sdk: tracker from JSON", "rasa_sdk/interfaces.py"),
    ("our actions (actions/)", f"{ROOT}/actions/"),
    ("backend: SQLAlchemy", "sqlalchemy/"),
    ("handoff client (httpx)", "httpx/"),
    ("handoff: event consumer", "handoff/consumer.py"),
    ("handoff: insights", "handoff/insights"),
    ("handoff: store", "handoff/store"),
    ("FastAPI / Starlette", "starlette/"),
    ("uvicorn", "uvicorn/"),
    ("pydantic", "pydantic"),
    ("asyncio event loop", "asyncio/"),
)

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>.*?)(?::(?P<line>\d+))?\)$")


def _executable() -> Optional[str]:
    """py-spy from this environment (requirements/bot.txt), else from the PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def available() -> bool:
    return _executable() is not None


class Sampler:
    """``py-spy record`` on each of ``pids`` (and their subprocesses) for ``seconds``."""

    def __init__(self, pids: Dict[str, int], seconds: float, out_dir: Path) -> None:
        self.pids, self.seconds, self.out_dir = pids, seconds, out_dir
        self.outputs: Dict[str, Path] = {}
        self._procs: List[subprocess.Popen] = []

    def __enter__(self) -> Sampler:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            out = self.out_dir / f"pyspy-{name}.txt"
            self.outputs[name] = out
            self._procs.append(subprocess.Popen(
                [str(_executable()), "record", "--pid", str(pid), "--duration", str(int(round(self.seconds))),
                 "--rate", str(RATE_HZ), "--format", "raw", "--gil", "--subprocesses", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def __exit__(self, *_: object) -> None:
        for proc in self._procs:
            try:
                proc.wait(timeout=self.seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _shorten(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.10/", "lib/python3.11/", "/work/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return path


def _frames(stack: str) -> List[Tuple[str, str]]:
    """(function, path) of each frame of a collapsed stack, outermost first."""
    frames = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame)
        if match:
            frames.append((match.group("function"), match.group("path")))
        else:
            frames.append((frame, ""))
    return frames


def _matches(fragment: str, function: str, path: str) -> bool:
    if ":" in fragment:
        file_part, function_part = fragment.split(":", 1)
        return path.endswith(file_part) and function == function_part
    return fragment in path


def summarise(raw: Path, turns: int, rate: int = RATE_HZ, top: int = 12) -> Dict[str, Any]:
    """The summary of one process's raw py-spy output over ``turns`` answered turns."""
    total = 0
    stage_samples: Counter = Counter()
    self_samples: Counter = Counter()
    for line in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        # py-spy puts "process 123:"python ..."" as the outermost frame with --subprocesses.
        frames = [f for f in _frames(stack) if f[1]]
        if not frames:
            continue
        total += count
        seen = set()
        for function, path in frames:
            for stage, fragment in STAGES:
                if stage not in seen and _matches(fragment, function, path):
                    seen.add(stage)
        for stage in seen:
            stage_samples[stage] += count
        function, path = frames[-1]
        self_samples[f"{function} ({_shorten(path)})"] += count
    per_turn = 1000.0 / rate / max(1, turns)

    def share(samples: int) -> float:
        return round(samples / total, 3) if total else 0.0

    return {
        "samples": total,
        "turns": turns,
        "gil_ms_per_turn": round(total * per_turn, 2),
        "stages": [{"stage": stage, "share": share(n), "gil_ms_per_turn": round(n * per_turn, 2)}
                   for stage, n in stage_samples.most_common() if share(n) >= 0.01],
        "top_self": [{"function": name, "share": share(n), "gil_ms_per_turn": round(n * per_turn, 2)}
                     for name, n in self_samples.most_common(top)],
    }


def summarise_all(outputs: Dict[str, Path], turns: int) -> Dict[str, Dict[str, Any]]:
    return {name: summarise(path, turns) for name, path in outputs.items()}
