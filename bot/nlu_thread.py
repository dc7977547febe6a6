"""The NLU of a message runs in its own thread, so the event loop serves other customers meanwhile.

Rasa 3.6's ``MessageProcessor.parse_message`` runs the whole NLU pipeline (language detection,
featurizers, DIET, the response selector, the second opinion) synchronously inside the event
loop: about 25 ms of this server's time per message during which nothing else of the process
moves. Under load a turn that has sent its request to the action server cannot take the answer
until every other customer's NLU queued before it has run, so the tail latency grew while the CPU
was half idle (docs/benchmarks.md, "Profile under load").

:func:`install` (the Rasa server installs it at start, bot/rasa_patches.py) makes
``parse_message`` run the pipeline (``_parse_message_with_graph``) in one dedicated thread and
await it; everything else of the method is Rasa's, on the loop, in Rasa's order. One thread: one
message's NLU at a time, as before, so no component is ever used by two messages at once; the
loop meanwhile sends and receives other turns' requests (TensorFlow and most of the featurizers
release the GIL while they compute). A message's own turn still waits for its NLU, so a single
conversation is not faster. Measured on the benchmark's ramp (scripts/bench_turns.py, the same
2-core machine, one Rasa process): sustained 7.6 → 12.1 turns/s at p95 under 500 ms.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional

from rasa.core.processor import MessageProcessor
from rasa.shared.core.trackers import DialogueStateTracker

#: What :func:`install` replaces in Rasa, and what the replacement calls of Rasa's.
REPLACES = ("rasa.core.processor:MessageProcessor.parse_message",)
RELIES_ON = (
    "rasa.core.processor:MessageProcessor._parse_message_with_graph",
    "rasa.core.processor:MessageProcessor._update_full_retrieval_intent",
    "rasa.core.processor:MessageProcessor._check_for_unseen_features",
)

#: The one thread every message's NLU runs in (per process: each Sanic worker has its own).
_nlu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="helder-nlu")


async def parse_message(self: MessageProcessor, message: Any, tracker: Optional[DialogueStateTracker] = None,
                        only_output_properties: bool = True) -> Dict[str, Any]:
    """Rasa's ``MessageProcessor.parse_message`` with the pipeline run in the NLU thread."""
    if self.http_interpreter:  # NLU by another server: Rasa's own await
        parse_data = await self.http_interpreter.parse(message)
    else:
        if tracker is None:
            tracker = DialogueStateTracker.from_events(message.sender_id, [])
        parse_data = await asyncio.get_running_loop().run_in_executor(
            _nlu, self._parse_message_with_graph, message, tracker, only_output_properties)
    self._update_full_retrieval_intent(parse_data)
    self._check_for_unseen_features(parse_data)
    return parse_data


def install() -> None:
    """Makes Rasa parse messages in the NLU thread."""
    MessageProcessor.parse_message = parse_message
