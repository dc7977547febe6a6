"""Profiles the hot path of a turn: where the time of one customer message goes.

Loads the model in this process with the real endpoints (Redis tracker store, lock store and
event broker on a private Redis, the action server started beside it), warms up, then runs the
benchmark's conversations (scripts/bench_turns.py OURS) through ``Agent.handle_text``, first
without and then under cProfile. Reports the wall time per turn and, per stage of a turn
(NLU components, policies, remote actions, tracker store, lock store, event broker), the
cumulative time per turn and its share. Writes results/bench_profile.json.

    PYTHONPATH=. .venv/bin/python scripts/bench_profile.py [--conversations 30] [--model PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import pstats
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

from scripts.bench_turns import OURS  # noqa: E402
from scripts.benchlib import RESULTS, RedisServer  # noqa: E402
from scripts.model import ensure_model  # noqa: E402
from scripts.stack import Stack, free_port  # noqa: E402

# Stages of a turn: (label, file fragment, function name). Cumulative time of the function.
STAGES: List[Tuple[str, str, str]] = [
    ("whole turn (Agent.handle_message)", "rasa/core/agent.py", "handle_message"),
    ("NLU: language detection", "bot/nlu/language_detector.py", "process"),
    ("NLU: tokenizer (spaCy blank + lemmas)", "bot/nlu/tokenizer.py", "process"),
    ("NLU: regex featurizer", "rasa/nlu/featurizers/sparse_featurizer/regex_featurizer.py", "process"),
    ("NLU: lexical-syntactic featurizer", "lexical_syntactic_featurizer.py", "process"),
    ("NLU: count-vectors featurizers", "count_vectors_featurizer.py", "process"),
    ("NLU: DIET classifier", "rasa/nlu/classifiers/diet_classifier.py", "process"),
    ("NLU: regex entity extractor", "regex_entity_extractor.py", "process"),
    ("policies: TED", "rasa/core/policies/ted_policy.py", "predict_action_probabilities"),
    ("policies: rules", "rasa/core/policies/rule_policy.py", "predict_action_probabilities"),
    ("policies: memoization", "rasa/core/policies/memoization.py", "predict_action_probabilities"),
    ("remote actions (HTTP to the action server)", "rasa/core/actions/action.py", "run"),
    ("tracker store: retrieve", "rasa/core/tracker_store.py", "retrieve"),
    ("tracker store: save", "rasa/core/tracker_store.py", "save"),
    ("event broker: publish (XADD)", "bot/event_broker.py", "publish"),
    ("lock store", "rasa/core/lock_store.py", "lock"),
    ("language detection: langdetect", "langdetect/detector.py", "get_probabilities"),
]


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    for name in ("rasa", "tensorflow", "absl", "sanic", "apscheduler", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)


async def run_conversations(agent: Any, conversations: int) -> int:
    turns = 0
    for i in range(conversations):
        sender = f"profile-{uuid.uuid4().hex}"
        for text in OURS[i % len(OURS)]:
            replies = await agent.handle_text(text, sender_id=sender)
            if not replies:
                raise RuntimeError(f"no reply to {text!r}")
            turns += 1
    return turns


def stage_table(stats: pstats.Stats, turns: int) -> List[Dict[str, Any]]:
    raw = stats.stats  # type: ignore[attr-defined]
    whole = None
    rows = []
    for label, fragment, function in STAGES:
        total = 0.0
        for (filename, _line, name), (_cc, _nc, _tt, cumulative, _callers) in raw.items():
            if name == function and filename.replace(os.sep, "/").endswith(fragment) or (
                    name == function and fragment in filename.replace(os.sep, "/")):
                total += cumulative
        if whole is None:
            whole = total or 1.0
        rows.append({"function": label, "ms_per_turn": round(1000 * total / turns, 2),
                     "share": round(total / whole, 4)})
    return rows


async def profile(model: Path, conversations: int, dump: Any = None) -> Dict[str, Any]:
    from rasa.core.agent import load_agent
    from rasa.utils.tensorflow.environment import setup_tf_environment

    setup_tf_environment()  # as `rasa run` does: honours TF_INTER_OP_ and TF_INTRA_OP_PARALLELISM_THREADS
    from rasa.core.utils import AvailableEndpoints

    agent = await load_agent(str(model), endpoints=AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml")))
    await run_conversations(agent, len(OURS))  # warm-up
    start = time.perf_counter()
    turns = await run_conversations(agent, conversations)
    plain = (time.perf_counter() - start) / turns
    profiler = cProfile.Profile()
    profiler.enable()
    start = time.perf_counter()
    turns_profiled = await run_conversations(agent, conversations)
    profiled = (time.perf_counter() - start) / turns_profiled
    profiler.disable()
    stats = pstats.Stats(profiler)
    if dump:
        stats.dump_stats(str(dump))
    rows = stage_table(stats, turns_profiled)
    return {"turns": turns, "ms_per_turn_without_profiler": round(1000 * plain, 1),
            "ms_per_turn_under_profiler": round(1000 * profiled, 1), "top": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--dump", type=Path, help="also write the raw pstats here")
    args = parser.parse_args()
    _quiet()
    model = (args.model or ensure_model()).resolve()
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    redis = RedisServer(workdir / "redis", free_port())
    stack = Stack(redis_url=redis.url, actions_port=free_port(), handoff_port=free_port(), log_dir=workdir / "logs",
                  jwt_secret=uuid.uuid4().hex, extra_env={"KLANTCONTACT_DB_URL": f"sqlite:///{workdir / 'helder.db'}"})
    try:
        stack.ensure_seeded()
        stack.start_actions()
        os.environ.update(stack.env())
        result = asyncio.run(profile(model, args.conversations, args.dump))
    finally:
        stack.stop()
        redis.stop()
    result["summary"] = (
        f"{result['turns']} turns in process (Agent.handle_text with the real Redis stores, event broker and "
        f"action server): {result['ms_per_turn_without_profiler']} ms per turn without the profiler, "
        f"{result['ms_per_turn_under_profiler']} ms under cProfile (the shares below are of the profiled time)."
    )
    out = RESULTS / "bench_profile.json"
    previous = json.loads(out.read_text()) if out.exists() else {}
    result["findings"] = previous.get("findings", [])
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(result["summary"])
    for row in result["top"]:
        print(f"  {row['function']:48s} {row['ms_per_turn']:8.2f} ms/turn  {100 * row['share']:5.1f} %")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
