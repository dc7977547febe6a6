"""On the trained model, the node-after-node graph runner (bot/graph_runner.py) parses and predicts
exactly as Rasa's dask runner: every held-out message of both languages, and the next action after
each step of real conversations."""

import asyncio
import json

import pytest
from rasa.core.agent import Agent
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import graph_runner
from scripts.bench_understanding import load_heldout
from scripts.model import ensure_model

RASA_RUN = DaskGraphRunner.run if DaskGraphRunner.run is not graph_runner.run else None


@pytest.fixture(scope="module")
def agent():
    if RASA_RUN is None:
        pytest.skip("Rasa's runner was replaced before this module was imported")
    loaded = Agent.load(str(ensure_model(quiet=True)))
    yield loaded
    DaskGraphRunner.run = RASA_RUN


def with_runner(run, work):
    DaskGraphRunner.run = run
    try:
        return asyncio.run(work())
    finally:
        DaskGraphRunner.run = RASA_RUN


def canonical(value):
    return json.dumps(value, sort_keys=True, default=str)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_held_out_message_is_parsed_the_same(agent, language):
    texts = [example.text for example in load_heldout(language)]

    async def parse_all():
        return [canonical(await agent.parse_message(text)) for text in texts]

    assert with_runner(graph_runner.run, parse_all) == with_runner(RASA_RUN, parse_all)


CONVERSATIONS = {
    "nl": ["hallo", "waar blijft mijn bestelling nou", "48213377", "3511 AB", "dank je wel"],
    "en": ["hi", "my tv has no signal since this morning", "45678912", "9000", "ok thank you"],
}


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_next_action_is_predicted_the_same_at_every_step(agent, language):
    processor = agent.processor

    async def predictions():
        tracker = DialogueStateTracker.from_events(f"parity-{language}", [ActionExecuted("action_listen")],
                                                   slots=agent.domain.slots)
        predicted = []
        for text in CONVERSATIONS[language]:
            parse = await agent.parse_message(text)
            tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse))
            for _ in range(5):  # the predicted actions of the turn, until the bot listens
                prediction = processor.predict_next_with_tracker(tracker) or {}
                predicted.append(canonical({key: prediction.get(key) for key in ("scores", "policy", "confidence")}))
                action, _ = max(((s["action"], s["score"]) for s in prediction.get("scores", [])), key=lambda x: x[1])
                tracker.update(ActionExecuted(action))
                if action == "action_listen":
                    break
        return predicted

    assert with_runner(graph_runner.run, predictions) == with_runner(RASA_RUN, predictions)
