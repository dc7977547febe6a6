"""CPU per NLU component and parse: where a parse's time goes, component by component.

Loads one model, wraps the function each node of Rasa's prediction graph runs with a
``time.process_time`` timer (CPU of this process, TensorFlow's threads included), parses the
held-out messages (tests/nlu_holdout_{nl,en}.yml) after 50 to warm up, and prints the CPU per
parse of every node, most expensive first. The timer reaches into Rasa 3.6's graph runner
(``_instantiated_nodes``, ``GraphNode._fn``): on another Rasa version it says so and stops.
To compare code changes that leave the model as it is, run it on each commit with the same model.

    PYTHONPATH=. .venv/bin/python scripts/nlu_component_times.py [--model models/X.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path
from typing import Any, Callable, DefaultDict, Dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_understanding import load_heldout  # noqa: E402
from scripts.model import model_path  # noqa: E402

WARM_UP = 50


def timed(fn: Callable[..., Any], name: str, spent: DefaultDict[str, float]) -> Callable[..., Any]:
    """``fn`` adding its CPU time to ``spent[name]``."""
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.process_time() - start
    return run


async def measure(model: str) -> Dict[str, Any]:
    """CPU seconds per parse, in all and per graph node."""
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    nodes = getattr(agent.processor.graph_runner, "_instantiated_nodes", None)
    if not isinstance(nodes, dict) or not all(hasattr(node, "_fn") for node in nodes.values()):
        raise SystemExit("this Rasa's graph runner has no _instantiated_nodes with _fn: written for Rasa 3.6")
    spent: DefaultDict[str, float] = collections.defaultdict(float)
    for name, node in nodes.items():
        node._fn = timed(node._fn, name, spent)
    texts = [example.text for language in ("nl", "en") for example in load_heldout(language)]
    for text in texts[:WARM_UP]:
        await agent.parse_message(text)
    spent.clear()
    start = time.process_time()
    for text in texts:
        await agent.parse_message(text)
    total = time.process_time() - start
    return {"parses": len(texts), "total": total, "nodes": spent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model file (default: the one make train builds)")
    args = parser.parse_args()
    model = args.model or str(model_path())
    if not Path(model).is_file():
        raise SystemExit(f"no model at {model}: run make train, or name one with --model")
    result = asyncio.run(measure(model))
    parses = result["parses"]
    print(f"{Path(model).name}: {parses} parses, {1000 * result['total'] / parses:.2f} ms CPU each")
    for name, seconds in sorted(result["nodes"].items(), key=lambda item: -item[1]):
        if seconds * 1000 / parses >= 0.01:
            print(f"{1000 * seconds / parses:8.2f} ms  {name}")


if __name__ == "__main__":
    main()
