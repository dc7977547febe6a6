"""CPU per NLU parse of two models, measured in the same run (before/after for a pipeline change).

Both models are loaded in this process and parse the held-out messages (tests/nlu_holdout_{nl,en}.yml)
alternately, message by message, so both see the same machine state; each parse is timed with
``time.process_time`` (CPU of this process, not wall clock). The first 50 messages warm both up.

    PYTHONPATH=. .venv/bin/python scripts/bench_parse_ab.py BEFORE.tar.gz AFTER.tar.gz [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_understanding import load_heldout  # noqa: E402

WARM_UP = 50


async def measure(models: List[str], rounds: int) -> Dict[str, List[float]]:
    """CPU seconds of every parse, per model."""
    from rasa.core.agent import Agent

    agents = [Agent.load(model) for model in models]
    texts = [example.text for language in ("nl", "en") for example in load_heldout(language)]
    for agent in agents:
        for text in texts[:WARM_UP]:
            await agent.parse_message(text)
    spent: Dict[str, List[float]] = {model: [] for model in models}
    for _ in range(rounds):
        for text in texts:
            for model, agent in zip(models, agents):
                start = time.process_time()
                await agent.parse_message(text)
                spent[model].append(time.process_time() - start)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the held-out messages")
    args = parser.parse_args()
    for model in (args.before, args.after):
        if not Path(model).is_file():  # Agent.load would quietly load the newest model in models/
            parser.error(f"no model at {model}")
    spent = asyncio.run(measure([args.before, args.after], args.rounds))
    for model, seconds in spent.items():
        ordered = sorted(seconds)
        n = len(ordered)
        print(f"{Path(model).name}: CPU per parse mean {1000 * sum(ordered) / n:.2f} ms, "
              f"p50 {1000 * ordered[n // 2]:.2f}, p95 {1000 * ordered[int(n * 0.95)]:.2f} ({n} parses)")


if __name__ == "__main__":
    main()
