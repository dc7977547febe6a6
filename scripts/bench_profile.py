"""Profiles the hot path of a turn: where the time of one customer message goes.

Loads the model in this process with the real endpoints (Redis tracker store, lock store and
event broker on a private Redis, the action server started beside it) and the Rasa server's
changes to Rasa (bot/rasa_patches.py, as bot/server.py installs them), warms up, then runs the
benchmark's conversations (scripts/bench_turns.py OURS) through ``Agent.handle_text``, first
without and then under cProfile. Reports the wall time per turn and, per stage of a turn
(NLU components, policies, remote actions, tracker store, lock store, event broker), the
cumulative time per turn and its share. Then what each of the Rasa server's fixes of the hot path
saves: the same conversations with all of bot/rasa_patches.py's patches and with that one taken
out (``rasa_patches.without``), alternating, CPU ms per turn of this process (Rasa) and of the
action server, and the wall time. Writes results/bench_profile.json.

    PYTHONPATH=. .venv/bin/python scripts/bench_profile.py [--conversations 30] [--model PATH]
        [--ablation-rounds 3]
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
from scripts.benchlib import RESULTS, cpu_seconds, quiet_rasa_logs  # noqa: E402
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
    "(2026-12-02, against the commit before; what each saves in this run: 'What each fix saves').",
    "Timing every stage of a turn on make run (2026-12-04): on the slowest turns, the postcode that "
    "completes identification, the action server's two backend round trips (verify, then outages) and its "
    "solver, each opening a new SQLite connection, were the largest parts; every turn also called the "
    "action server's per-turn observer, which replayed the whole conversation (2.0-2.7 ms). A CPU profile of "
    "the Rasa server then showed the policies' predictions (a quarter of its main thread), a tenth of that "
    "in dask's scheduler, and the rule policy walking every state of the conversation for every rule. "
    "Fixed: SQLite pooled and in WAL mode, the outages read while the identity is checked "
    "(actions/backend/sql.py, actions/identification.py: validate 4.3 → 3.5 ms, solver 7.7 → 5.2 ms on "
    "that turn); the observer's own part run in the Rasa server (bot/local_observer.py); the rule "
    "policy's walk stopped past the longest remaining rule (bot/rule_matching.py); the model graph run "
    "node after node in an order worked out once (bot/graph_runner.py). What each of the Rasa server's "
    "fixes saves is measured below ('What each fix saves').",
    "Left as is: DIET and the response selector (each builds the sparse features again), the JSON of the "
    "whole tracker sent with every action call, and Rasa's tracker copies for every prior state the "
    "policies look at.",
]


#: The fixes of the hot path whose saving is measured (each a patch in bot/rasa_patches.py, named by
#: its file); the other patches are about failures and logs, or pay off only under concurrency
#: (bot/nlu_thread.py: the event loop serves other turns meanwhile; see the throughput ramp).
ABLATED = ("bot/event_lookup.py", "bot/action_validation.py", "bot/endpoint_sessions.py",
           "bot/domain_for_actions.py", "bot/slot_copy.py", "bot/local_observer.py", "bot/rule_matching.py",
           "bot/graph_runner.py")


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


async def _measure(agent: Any, conversations: int, actions_pid: Optional[int]) -> Tuple[int, float, float, float]:
    """(turns, wall s, CPU s of this process, CPU s of the action server) of one pass."""
    actions_before = cpu_seconds(actions_pid) if actions_pid else 0.0
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    turns = await run_conversations(agent, conversations)
    wall, cpu = time.perf_counter() - wall_before, time.process_time() - cpu_before
    return turns, wall, cpu, (cpu_seconds(actions_pid) - actions_before) if actions_pid else 0.0


async def ablation(agent: Any, conversations: int, rounds: int, actions_pid: Optional[int]) -> List[Dict[str, Any]]:
    """Per fix: ms per turn with every patch and with that one taken out, alternating which
    goes first round by round, so that drift of the machine falls on both alike."""
    rows = []
    for where in ABLATED:
        patch = next(p for p in rasa_patches.PATCHES if f"({where})" in p.what)
        totals = {"with": [0, 0.0, 0.0, 0.0], "without": [0, 0.0, 0.0, 0.0]}
        for round_ in range(rounds):
            for setting in (("with", "without") if round_ % 2 == 0 else ("without", "with")):
                if setting == "with":
                    measured = await _measure(agent, conversations, actions_pid)
                else:
                    with rasa_patches.without(patch):
                        measured = await _measure(agent, conversations, actions_pid)
                totals[setting] = [a + b for a, b in zip(totals[setting], measured)]
        per_turn: Dict[str, Dict[str, float]] = {
            name: {setting: round(1000 * totals[setting][index] / totals[setting][0], 2)
                   for setting in ("without", "with")}
            for name, index in (("wall", 1), ("rasa_cpu", 2), ("actions_cpu", 3))}
        rows.append({"fix": where, "what": patch.what, "turns_each": totals["with"][0],
                     **{f"{name}_ms_per_turn": values for name, values in per_turn.items()}})
        rasa, actions = per_turn["rasa_cpu"], per_turn["actions_cpu"]
        print(f"  {where:30s} rasa CPU {rasa['without']:6.2f} → {rasa['with']:6.2f} ms/turn, "
              f"actions CPU {actions['without']:5.2f} → {actions['with']:5.2f}", flush=True)
    return rows


async def profile(model: Path, conversations: int, dump: Any = None, ablation_rounds: int = 0,
                  actions_pid: Optional[int] = None) -> Dict[str, Any]:
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
    fixes = await ablation(agent, conversations, ablation_rounds, actions_pid) if ablation_rounds else []
    await endpoint_sessions.close_all()  # what the server does as it stops (no Sanic app here)
    return {"turns": turns, "ms_per_turn_without_profiler": round(1000 * plain, 1),
            "ms_per_turn_under_profiler": round(1000 * profiled, 1), "top": rows,
            "fixes": fixes, "ablation_rounds": ablation_rounds, "conversations_per_pass": conversations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--dump", type=Path, help="also write the raw pstats here")
    parser.add_argument("--ablation-rounds", type=int, default=3,
                        help="rounds of with/without each fix (0: do not measure the fixes)")
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
        result = asyncio.run(profile(model, args.conversations, args.dump, args.ablation_rounds,
                                     stack.processes["actions"].pid))
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
