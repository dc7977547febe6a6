"""Rasa's model graph run node after node (bot/graph_runner.py): the results dask's runner gives."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema, SchemaNode
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage

from bot import graph_runner, rasa_patches

RASA_RUN = DaskGraphRunner.run  # before the patches are installed below
CALLS: List[str] = []


@pytest.fixture(scope="module", autouse=True)
def patched_rasa():
    rasa_patches.install()


class Step(GraphComponent):
    """Appends its name to what it is given (a chain, like the NLU pipeline), and counts its calls."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> Step:
        return cls(config["name"])

    def run(self, **parts: Any) -> List[str]:
        CALLS.append(self.name)
        joined: List[str] = []
        for key in sorted(parts):
            joined += parts[key] if isinstance(parts[key], list) else [str(parts[key])]
        return joined + [self.name]


def node(name: str, needs: Dict[str, str], target: bool = False) -> SchemaNode:
    return SchemaNode(needs=needs, uses=Step, constructor_name="create", fn="run", config={"name": name},
                      eager=True, is_target=target)


SCHEMA = GraphSchema({
    "tokens": node("tokens", {"message": "__message__"}),
    "features_a": node("features_a", {"tokens": "tokens"}),
    "features_b": node("features_b", {"tokens": "tokens"}),
    "intent": node("intent", {"a": "features_a", "b": "features_b"}, target=True),
    "unused": node("unused", {"message": "__message__"}),
    "policy": node("policy", {"tracker": "__tracker__", "intent": "intent"}, target=True),
})


def runner(tmp_path) -> DaskGraphRunner:
    return DaskGraphRunner(SCHEMA, LocalModelStorage(tmp_path), ExecutionContext(SCHEMA, "test"))


@pytest.mark.parametrize("targets", [None, ["intent"], ["policy"], ["intent", "policy"]])
def test_the_same_outputs_and_each_node_once(tmp_path, targets):
    inputs = {"__message__": "hallo", "__tracker__": "t1"}
    CALLS.clear()
    expected = RASA_RUN(runner(tmp_path), inputs, targets)
    rasa_calls = sorted(CALLS)
    CALLS.clear()
    ours = runner(tmp_path)
    assert graph_runner.run(ours, inputs, targets) == expected
    assert sorted(CALLS) == rasa_calls and len(CALLS) == len(set(CALLS))
    # The order is worked out once; a second run gives the same again.
    assert graph_runner.run(ours, {"__message__": "hallo", "__tracker__": "t1"}, targets) == expected


def test_a_missing_input_reaches_the_node_as_its_name_and_fails_there_as_with_dask(tmp_path):
    for run in (RASA_RUN, graph_runner.run):
        with pytest.raises(GraphRunError, match="Missing input to run node 'policy'"):
            run(runner(tmp_path), {"__message__": "hi"}, ["policy"])


def test_an_input_named_like_a_node_replaces_it(tmp_path):
    inputs = {"__message__": "hi", "__tracker__": "t", "features_b": ["given"]}
    CALLS.clear()
    result = graph_runner.run(runner(tmp_path), inputs, ["intent"])
    assert result == RASA_RUN(runner(tmp_path), inputs, ["intent"])
    assert result == {"intent": ["hi", "tokens", "features_a", "given", "intent"]}
    assert "features_b" not in CALLS


def test_an_input_value_naming_a_node_is_refused(tmp_path):
    with pytest.raises(GraphRunError):
        graph_runner.run(runner(tmp_path), {"__message__": "tokens"}, ["intent"])


def test_installed_by_the_servers_patches():
    assert DaskGraphRunner.run is graph_runner.run
    assert RASA_RUN is not graph_runner.run
