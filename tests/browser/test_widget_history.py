"""The chat widget's history request in a real browser: the session id travels in the
``X-Helder-Session`` header (cross-origin, so Chromium sends a CORS preflight the service must
allow), never in the URL.

Needs no Rasa and no trained model (unlike ``test_widget.py``): the widget is served from a small
"shop" on an origin in ``HANDOFF_WIDGET_ORIGINS``, its conversation is played into the event
stream like Rasa's broker would, and the widget (whose socket.io cannot connect here) shows the
history it fetched on start.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, List
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Service, bot_event, fresh_page, user_event

ROOT = Path(__file__).resolve().parents[2]
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Shop</h1>
<script src="/widget/helder-widget.js" data-history-url="{history}" data-rasa-url="http://127.0.0.1:9"
        data-locale="en-GB" defer></script>
</body></html>
"""

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def shop(service: Service) -> Iterator[str]:
    """The shop page with the widget, on the origin the service grants CORS to."""
    page = PAGE.format(history=service.url).encode()

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (the base class's name)
            if self.path in ("/", "/index.html"):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            super().do_GET()

    port = urlsplit(service.widget_origin).port
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=str(ROOT / "web")))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield service.widget_origin
    server.shutdown()
    server.server_close()


def wait_for_transcript(service: Service, session_id: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        response = httpx.get(f"{service.url}/public/conversations/transcript",
                             headers={"X-Helder-Session": session_id}, timeout=5)
        if response.status_code == 200 and len(response.json()) == count:
            return
        time.sleep(0.1)
    raise AssertionError("the service never had the transcript")


def test_the_widget_fetches_its_history_with_the_session_id_in_a_header(browser: Any, service: Service, shop: str) -> None:
    session_id = uuid.uuid4().hex
    now = time.time()
    service.publish(session_id, user_event("where is my parcel?", at=now - 20))
    service.publish(session_id, bot_event("Let me look that up.", at=now - 19))
    service.publish(session_id, bot_event("Hi, Eva here.", at=now - 10, agent_id="eva", agent_name="Eva de Jong",
                                          message_id=uuid.uuid4().hex))
    wait_for_transcript(service, session_id, 3)

    with fresh_page(browser, 15_000) as page:
        # A customer who chatted on this browser before: the widget continues that session.
        stored = json.dumps({"id": session_id, "used": True, "at": int(now * 1000)})
        page.add_init_script(f"window.localStorage.setItem('helder.session', {json.dumps(stored)});")
        requests: List[Any] = []
        page.on("request", lambda request: requests.append(request)
                if request.url.startswith(service.url) else None)
        page.goto(shop + "/")
        page.get_by_test_id("hw-launcher").click()
        messages = page.locator('[data-testid="hw-message"]')
        expect(messages.filter(has_text="where is my parcel?")).to_be_visible()
        expect(messages.filter(has_text="Let me look that up.")).to_be_visible()
        expect(messages.filter(has_text="Hi, Eva here.")).to_be_visible()

    history = [r for r in requests if "/public/" in r.url]
    assert history, "the widget did not ask for its history"
    for request in history:
        assert session_id not in request.url
        assert urlsplit(request.url).path == "/public/conversations/transcript"
        assert request.headers.get("x-helder-session") == session_id
        assert "cookie" not in request.headers
    assert session_id not in service.log_tail(200_000)
