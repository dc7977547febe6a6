"""Rasa's model graph run node after node in a fixed order, without dask's scheduler on every run.

Rasa 3.6 runs its model graph (the NLU pipeline for every message, the policies for every
prediction, several times a turn) with ``DaskGraphRunner.run``: each run derives the part of the
graph the targets need, builds a dask graph from it and hands it to ``dask.get``, whose scheduler
orders the tasks, keeps its own state, and executes them one after another in this thread (the
synchronous scheduler). For graphs of a dozen nodes that bookkeeping costs about as much as small
nodes themselves: about a tenth of every prediction's time in a profile of the benchmark's turns.

:func:`install` (the Rasa server installs it at start, bot/rasa_patches.py) replaces ``run`` with
the same evaluation: the nodes the targets need, each called once with its parents' outputs as
dask passed them (``(name, output)``, or the name of a parent that is neither a node nor an
input), inputs given to ``run`` replacing nodes of the same name, a ``RuntimeError`` raised as
``GraphRunError``; the order (parents first, in the order the schema lists them) is worked out
once per set of targets and inputs. The nodes of this assistant's graphs change nothing another
node reads but their own outputs (the NLU pipeline is a chain; the policies only read the
tracker), so any order that runs parents first gives the same result; tests compare both runners
on a graph and on the trained model's parses and predictions.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

#: What :func:`install` replaces in Rasa.
REPLACES = ("rasa.engine.runner.dask:DaskGraphRunner.run",)

_Plan = Tuple[Tuple[Text, Tuple[Text, ...]], ...]  # (node, the names of its parents), parents first


def _plan(runner: DaskGraphRunner, targets: Tuple[Text, ...], inputs: Tuple[Text, ...]) -> _Plan:
    """The nodes ``targets`` need, each after its parents; inputs stand in for nodes of their name."""
    cache: Dict[Tuple[Tuple[Text, ...], Tuple[Text, ...]], _Plan] = runner.__dict__.setdefault("_helder_plans", {})
    key = (targets, inputs)
    if key not in cache:
        nodes = runner._graph_schema.nodes
        order: List[Tuple[Text, Tuple[Text, ...]]] = []
        seen = set(inputs)

        def visit(name: Text) -> None:
            if name in seen or name not in nodes:
                return
            seen.add(name)
            parents = tuple(nodes[name].needs.values())
            for parent in parents:
                visit(parent)
            order.append((name, parents))

        for target in targets:
            visit(target)
        cache[key] = tuple(order)
    return cache[key]


def run(self: DaskGraphRunner, inputs: Optional[Dict[Text, Any]] = None,
        targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
    """Rasa's ``DaskGraphRunner.run``, evaluated node after node (see the module docstring)."""
    run_targets = list(targets if targets else self._graph_schema.target_names)
    inputs = inputs or {}
    plan = _plan(self, tuple(run_targets), tuple(inputs))
    planned = {name for name, _ in plan}
    for input_value in inputs.values():
        if isinstance(input_value, str) and (input_value in planned or input_value in inputs):
            raise GraphRunError(
                f"Input value '{input_value}' clashes with a node name. Make sure "
                f"that none of the input names passed to the `run` method are the "
                f"same as node names in the graph schema."
            )
    outputs: Dict[Text, Any] = {name: (name, value) for name, value in inputs.items()}
    try:
        for name, parents in plan:
            outputs[name] = self._instantiated_nodes[name](*(outputs.get(parent, parent) for parent in parents))
        return dict(outputs.get(target, target) for target in run_targets)
    except RuntimeError as e:
        raise GraphRunError("Error running runner.") from e


def install() -> None:
    """Makes Rasa run its model graphs node after node."""
    DaskGraphRunner.run = run
