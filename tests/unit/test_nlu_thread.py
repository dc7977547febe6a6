"""The NLU of a message runs in one thread beside the event loop (bot/nlu_thread.py): the loop
goes on serving other turns meanwhile, messages are parsed one at a time, and the rest of Rasa's
parse_message runs as before."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Dict, List

from rasa.core.channels.channel import UserMessage

from bot import nlu_thread


class Processor:
    """The parts of Rasa's MessageProcessor that parse_message uses; the pipeline takes 0.2 s."""

    http_interpreter = None

    def __init__(self) -> None:
        self.threads: List[str] = []
        self.after: List[str] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def _parse_message_with_graph(self, message: UserMessage, tracker: Any, only_output_properties: bool
                                  ) -> Dict[str, Any]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.threads.append(threading.current_thread().name)
        time.sleep(0.2)  # blocking, as the pipeline is
        with self._lock:
            self.running -= 1
        assert tracker.sender_id == message.sender_id
        return {"text": message.text, "intent": {"name": "greet", "confidence": 1.0}, "entities": []}

    def _update_full_retrieval_intent(self, parse_data: Dict[str, Any]) -> None:
        self.after.append(f"update {parse_data['text']}")

    def _check_for_unseen_features(self, parse_data: Dict[str, Any]) -> None:
        self.after.append(f"check {parse_data['text']}")


def test_the_loop_serves_others_while_a_message_is_parsed_in_the_nlu_thread():
    processor = Processor()

    async def scenario() -> int:
        ticks = 0

        async def another_customer() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        other = asyncio.create_task(another_customer())
        parsed = await nlu_thread.parse_message(processor, UserMessage("hallo", sender_id="c1"))
        other.cancel()
        assert parsed["intent"]["name"] == "greet"
        return ticks

    ticks = asyncio.run(scenario())
    assert ticks >= 10, "the event loop stood still while the message was parsed"
    assert processor.threads == ["helder-nlu_0"]
    assert processor.after == ["update hallo", "check hallo"]


def test_messages_are_parsed_one_at_a_time_in_arrival_order():
    processor = Processor()

    async def scenario() -> List[str]:
        results = await asyncio.gather(*(nlu_thread.parse_message(processor, UserMessage(f"m{i}", sender_id=f"c{i}"))
                                         for i in range(3)))
        return [r["text"] for r in results]

    assert asyncio.run(scenario()) == ["m0", "m1", "m2"]
    assert processor.most_at_once == 1
    assert processor.after == ["update m0", "check m0", "update m1", "check m1", "update m2", "check m2"]


def test_an_nlu_server_elsewhere_is_awaited_as_rasa_does():
    processor = Processor()

    class Interpreter:
        async def parse(self, message: UserMessage) -> Dict[str, Any]:
            return {"text": message.text, "intent": {"name": "remote"}, "entities": []}

    processor.http_interpreter = Interpreter()  # type: ignore[assignment]
    parsed = asyncio.run(nlu_thread.parse_message(processor, UserMessage("hoi", sender_id="c1")))
    assert parsed["intent"]["name"] == "remote" and processor.threads == []
    assert processor.after == ["update hoi", "check hoi"]
