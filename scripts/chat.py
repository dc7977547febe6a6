"""Chat with the assistant in the terminal (`make shell`).

Talks to the REST channel of a running stack (`make run`); when none is running it starts
one for the duration of the chat. Type /quit to leave, /restart for a new conversation.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.stack import Stack  # noqa: E402


def _post(url: str, payload: dict) -> list:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read().decode() or "[]")


def _running(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def main() -> None:
    port = int(os.environ.get("RASA_PORT", 5005))
    url = f"http://127.0.0.1:{port}"
    stack = None
    if not _running(url):
        print("no assistant running on port", port, "- starting one (Ctrl-C to stop)...", flush=True)
        stack = Stack(rasa_port=port).start()
    sender = f"shell-{uuid.uuid4().hex[:12]}"
    print("Chat with the assistant (Dutch or English). /restart for a new conversation, /quit to leave.\n")
    try:
        while True:
            try:
                text = input("you> ")
            except EOFError:
                break
            if text.strip() == "/quit":
                break
            if text.strip() == "/restart":
                sender = f"shell-{uuid.uuid4().hex[:12]}"
                print("(new conversation)")
                continue
            for message in _post(f"{url}/webhooks/rest/webhook", {"sender": sender, "message": text}):
                if message.get("text"):
                    print("bot>", message["text"])
                for button in message.get("buttons", []):
                    print(f"      [{button.get('title')}] -> {button.get('payload')}")
    except KeyboardInterrupt:
        pass
    finally:
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    main()
