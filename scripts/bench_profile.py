"""Profiles the hot path of a turn: where the time of one customer message goes.

Loads the model in this process with the real endpoints (Redis tracker store, lock store and
event broker on a private Redis, the action server started beside it) and the Rasa server's
changes to Rasa (bot/rasa_patches.py, as bot/server.py installs them), warms up, then runs the
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
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

from bot import endpoint_sessions, rasa_patches  # noqa: E402
from scripts.bench_turns import OURS  # noqa: E402
from scripts.benchlib import RESULTS, quiet_rasa_logs  # noqa: E402
from scripts.model import ensure_model  # noqa: E402
from scripts.stack import RedisServer, Stack, free_port  # noqa: E402

# Stages of a turn: (label, "module:Class.method"). The cumulative time of that function.
STAGES: List[Tuple[str, str]] = [
    ("whole turn", "rasa.core.agent:Agent.handle_message"),
    ("NLU (the whole parse)", "rasa.core.processor:MessageProcessor.parse_message"),
    ("NLU: language detection", "bot.nlu.language_detector:LanguageDetector.process"),
    ("NLU: tokenizer (spaCy blank + lemmas)", "rasa.nlu.tokenizers.tokenizer:Tokenizer.process"),
    ("NLU: count-vectors featurizers", "rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer:"
                                       "CountVectorsFeaturizer.process"),
    ("NLU: DIET classifier", "rasa.nlu.classifiers.diet_classifier:DIETClassifier.process"),
    ("policies: all predictions", "rasa.core.processor:MessageProcessor._predict_next_with_tracker"),
    ("policies: TED", "rasa.core.policies.ted_policy:TEDPolicy.predict_action_probabilities"),
    ("policies: rules", "rasa.core.policies.rule_policy:RulePolicy.predict_action_probabilities"),
    ("policies: memoization", "rasa.core.policies.memoization:MemoizationPolicy.predict_action_probabilities"),
    ("custom actions (HTTP to the action server)", "rasa.core.actions.action:RemoteAction.run"),
    ("  of which the request (aiohttp)", "rasa.utils.endpoints:EndpointConfig.request"),
    ("tracker store: retrieve", "rasa.core.tracker_store:RedisTrackerStore._retrieve"),
    ("tracker store: save", "bot.tracker_store:RedisTrackerStore.save"),
    ("event broker: XADD of a turn's events", "bot.event_broker:RedisStreamEventBroker.flush"),
    ("response validation (compiled schema)", "bot.action_validation:validate_action_result"),
]


# What profiling this hot path found, and what was done (measured on the 2-core machine of
# docs/benchmarks.md on 2026-12-01, in process, ms of wall time per turn, same conversations).
FINDINGS: List[str] = [
    "Rasa validates every action-server response with `jsonschema.validate`, which first checks the "
    "events schema itself against the meta-schema: 26 ms per custom action call (0.8 ms with a compiled "
    "validator). bot/action_validation.py validates with one compiled validator: 121 → 59 ms per turn.",
    "The domain (45 kB of JSON) went with every action call: `enable_selective_domain` sends it only to the "
    "form validators; and Rasa's Redis tracker store deserialised the stored conversation twice per save "
    "(bot/tracker_store.py: once): 59 → about 50 ms per turn.",
    "TEDPolicy cost a third of a turn (TF inference and tracker featurisation for every prediction) while "
    "RulePolicy predicted every action of the benchmark's and the tests' conversations (101 of 101): "
    "TED removed: about 50 → 33 ms per turn.",
    "The event broker wrote each of a turn's 10-20 events with its own blocking XADD round trip: now one "
    "pipelined round trip per turn. The handoff service acknowledged and touched per event: now per batch "
    "(handoff CPU per turn about 9 → 2-5 ms, scripts/bench_consumer.py).",
    "Language detection ran langdetect (two passes, one over 55 languages) on every message: 12.5 ms; now a "
    "word vote over the spacy-lookups-data vocabularies first, langdetect only when unsure: 0.13 ms. The "
    "vocabularies as Python sets cost 159 MB per Rasa process; as sorted 64-bit hashes about 10 MB, and 26 "
    "instead of 55 langdetect profiles save about 40 MB more.",
    "The first message after a start paid for loading the language detector, lemma tables and spaCy "
    "tokenizers (about 1.5 s): they now load with the model, so the first answer comes right after /status "
    "(see 'Training and start-up').",
    "Under load (py-spy, 'Profile under load' above): Rasa looked up each event's class by walking every "
    "subclass of Event, checked every event of an action's response against all thirty event schemas, and "
    "opened a new session and connection for every action call: bot/event_lookup.py, the per-type check in "
    "bot/action_validation.py and bot/endpoint_sessions.py took Rasa's GIL time per turn from 79 to 59 ms "
    "('What the profile found, and what each fix saved').",
    "Left as is: DIET and the response selector (a quarter of Rasa's time; each builds the sparse features "
    "again), the JSON of the whole tracker sent with every action call (JSON encoding is 9 % of Rasa's time), "
    "the policies, and the slot-mapping action that observes every turn. In one process the NLU of one turn "
    "blocks the event loop, so a turn waiting for the action server also waits for other customers' NLU: "
    "that, not CPU, bounds the tail under load (two worker processes: 7.6 → 11.3 turns/s sustained).",
]


def _code_key(target: str) -> Optional[Tuple[str, int, str]]:
    """(filename, first line, name) of a function as cProfile names it; None if it is missing."""
    import importlib
    import inspect

    module_name, qualname = target.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    code = getattr(inspect.unwrap(obj), "__code__", None)
    return (code.co_filename, code.co_firstlineno, code.co_name) if code else None


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
    rows: List[Dict[str, Any]] = []
    whole = None
    for label, target in STAGES:
        key = _code_key(target)
        if key is None or key not in raw:  # not in this configuration (e.g. no TEDPolicy)
            continue
        cumulative = raw.get(key, (0, 0, 0.0, 0.0, {}))[3]
        whole = whole or cumulative or 1.0
        rows.append({"function": label, "ms_per_turn": round(1000 * cumulative / turns, 2),
                     "share": round(cumulative / whole, 4)})
    return rows


async def profile(model: Path, conversations: int, dump: Any = None) -> Dict[str, Any]:
    from rasa.core.agent import load_agent
    from rasa.utils.tensorflow.environment import setup_tf_environment

    setup_tf_environment()  # as `rasa run` does: honours TF_INTER_OP_ and TF_INTRA_OP_PARALLELISM_THREADS
    from rasa.core.utils import AvailableEndpoints

    rasa_patches.install()  # what the Rasa server's entry point (bot/server.py) installs
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
    await endpoint_sessions.close_all()  # what the server does as it stops (no Sanic app here)
    return {"turns": turns, "ms_per_turn_without_profiler": round(1000 * plain, 1),
            "ms_per_turn_under_profiler": round(1000 * profiled, 1), "top": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--dump", type=Path, help="also write the raw pstats here")
    args = parser.parse_args()
    quiet_rasa_logs()
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
    result["findings"] = FINDINGS
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(result["summary"])
    for row in result["top"]:
        print(f"  {row['function']:48s} {row['ms_per_turn']:8.2f} ms/turn  {100 * row['share']:5.1f} %")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
