"""The website chat widget in a real browser, on the demo shop, against the real stack.

Started once for this module: scripts/stack.py's ``Stack`` (Redis database 1 of the private test
Redis, so the console tests' fake service on database 0 is not disturbed; the handoff service; the
action server and Rasa with the trained model from the bot environment; the shop server
``web/server.py``), and Debian's chromium through Playwright (the ``browser`` fixture of
conftest.py). The tests do what a customer does in the widget and what an agent does through the
handoff API (sign-in + CSRF, as the console's JavaScript does).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import jwt
import pytest
from playwright.sync_api import expect

from scripts.stack import Stack, free_port
from tests.browser.conftest import fresh_page

ROOT = Path(__file__).resolve().parents[2]
BOT_PYTHON = ROOT / ".venv" / "bin" / "python"
MOBILE_SCREENSHOT = "/tmp/widget-mobile.png"
AGENT = ("eva", "Eva de Jong", "widget-test-" + uuid.uuid4().hex[:12])
DEMO_CUSTOMER = "48213377"

pytestmark = pytest.mark.timeout(1500)


# ---- the stack ----------------------------------------------------------------------------------


def _bot_python_output(args: List[str], timeout: float) -> str:
    result = subprocess.run([str(BOT_PYTHON), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not BOT_PYTHON.exists():
        pytest.fail("the bot environment .venv is missing: run `make install`")
    install = subprocess.run([str(ROOT / "scripts" / "install_web.sh")], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, f"scripts/install_web.sh failed:\n{install.stdout}\n{install.stderr}"
    model = Path(_bot_python_output(["scripts/model.py"], timeout=1200).strip().splitlines()[-1])
    assert model.exists(), model

    log_dir = tmp_path_factory.mktemp("widget-logs")
    database = tmp_path_factory.mktemp("widget-db") / "helder.db"
    rasa_port, handoff_port = free_port(), free_port()
    stack = Stack(
        redis_url=redis_url.rsplit("/", 1)[0] + "/1", rasa_port=rasa_port, actions_port=free_port(),
        handoff_port=handoff_port, web_port=free_port(), model=model, log_dir=log_dir,
        jwt_secret=uuid.uuid4().hex, handoff_token=uuid.uuid4().hex, session_secret=uuid.uuid4().hex,
        shop_token_secret="shop-" + uuid.uuid4().hex,
        extra_env={"KLANTCONTACT_DB_URL": f"sqlite:///{database}",
                   "RASA_PUBLIC_URL": f"http://127.0.0.1:{rasa_port}",
                   "HANDOFF_PUBLIC_URL": f"http://127.0.0.1:{handoff_port}"},
    )
    try:
        # Stack runs Rasa, the actions, the seed and the shop with its own interpreter: the bot's.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "executable", str(BOT_PYTHON))
            stack.start()
        stack.add_agent(*AGENT)
    except BaseException:
        stack.stop()
        _print_logs(log_dir)
        raise
    yield stack
    stack.stop()


def _print_logs(log_dir: Path) -> None:
    for name in ("web", "handoff", "actions", "rasa"):
        path = log_dir / f"{name}.log"
        if path.exists():
            print(f"--- {name}.log ---\n" + path.read_text(errors="replace")[-4000:])


def shop_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.web_port}"


@pytest.fixture
def shop_page(browser: Any, stack: Stack) -> Iterator[Any]:
    """The shop in a fresh browser profile; JS errors, CSP violations and failed loads fail the test."""
    with fresh_page(browser, 15_000, console_errors=True) as page:
        yield page


class AgentApi:
    """An agent on the handoff service's API: sign-in, then the CSRF token on every change."""

    def __init__(self, stack: Stack) -> None:
        self.client = httpx.Client(base_url=stack.handoff_url, timeout=30)
        response = self.client.post("/auth/login", json={"username": AGENT[0], "password": AGENT[2]})
        assert response.status_code == 200, response.text
        self.csrf = response.json()["csrf_token"]

    def post(self, path: str, body: Dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(path, json=body, headers={"X-CSRF-Token": self.csrf})

    def case_of(self, conversation_id: str, timeout: float = 30) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for case in self.client.get("/api/cases").json():
                if case["conversation_id"] == conversation_id:
                    return case
            time.sleep(0.2)
        raise AssertionError(f"no case for {conversation_id}")

    def close(self) -> None:
        self.client.close()


# ---- helpers --------------------------------------------------------------------------------------


def open_widget(page: Any, label: str) -> Any:
    page.get_by_role("button", name=label).click()
    return page.get_by_test_id("hw-input")


def say(page: Any, text: str) -> None:
    field = page.get_by_test_id("hw-input")
    field.fill(text)
    field.press("Enter")
    expect(messages(page, "customer").filter(has_text=text).last).to_be_visible()


def messages(page: Any, sender: str) -> Any:
    return page.locator(f'[data-testid="hw-message"][data-from="{sender}"]')


def bot_texts(page: Any) -> List[str]:
    return [t.strip() for t in messages(page, "bot").locator(".hw-bubble").all_inner_texts()]


def wait_for_bot_replies(page: Any, before: int, quiet: float = 1.5, timeout: float = 40) -> List[str]:
    """The bot's replies after ``before`` of them, once no new one came for ``quiet`` seconds."""
    expect(messages(page, "bot")).not_to_have_count(before, timeout=timeout * 1000)
    count, settled = messages(page, "bot").count(), time.monotonic()
    while time.monotonic() - settled < quiet:
        time.sleep(0.1)
        if messages(page, "bot").count() != count:
            count, settled = messages(page, "bot").count(), time.monotonic()
    return bot_texts(page)[before:]


def watch_typing(page: Any) -> None:
    """Records whether the typing indicator shows up (the bot may answer within a blink)."""
    page.evaluate("""() => {
        const typing = document.querySelector('#helder-chat-widget').shadowRoot.querySelector('.hw-typing');
        window.typingSeen = false;
        new MutationObserver(() => { if (!typing.hidden) window.typingSeen = true; })
            .observe(typing, {attributes: true});
    }""")


def user_texts(stack: Stack, conversation_id: str) -> List[str]:
    return [e.get("text") for e in tracker(stack, conversation_id)["events"] if e["event"] == "user"]


def session_id(page: Any) -> str:
    return page.evaluate("window.HelderWidget.sessionId")


def tracker(stack: Stack, conversation_id: str) -> Dict[str, Any]:
    response = httpx.get(f"{stack.rasa_url}/conversations/{conversation_id}/tracker",
                         headers=stack.auth_headers(), timeout=30)
    response.raise_for_status()
    return response.json()


DUTCH = {"u", "uw", "de", "het", "een", "van", "ik", "wat", "niet", "bent", "voor", "naar", "met", "op",
         "kunt", "bestelling", "klantnummer", "postcode", "wilt", "zijn", "dat", "hebt", "heeft", "mij", "om"}
ENGLISH = {"the", "you", "your", "a", "to", "of", "and", "what", "not", "are", "for", "with", "on", "can",
           "order", "customer", "number", "would", "have", "has", "me", "please", "i'm", "it"}


def language_of(text: str) -> str:
    words = re.findall(r"[a-zà-ÿ']+", text.lower())
    dutch, english = sum(w in DUTCH for w in words), sum(w in ENGLISH for w in words)
    return "nl" if dutch > english else "en" if english > dutch else "?"


# ---- the tests --------------------------------------------------------------------------------------


def test_english_customer_reaches_a_person_and_the_history_survives(shop_page: Any, stack: Stack) -> None:
    page = shop_page
    page.goto(f"{shop_url(stack)}/product?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    field = open_widget(page, "Chat with us")
    expect(field).to_be_focused()
    expect(page.get_by_label("Your message")).to_have_attribute("placeholder", "Type your message…")

    watch_typing(page)
    say(page, "i want to talk to a human")
    replies = wait_for_bot_replies(page, 0)
    assert page.evaluate("window.typingSeen"), "no typing indicator while the bot was working"
    expect(page.get_by_test_id("hw-typing")).to_be_hidden()
    assert any("colleague" in r or "person" in r for r in replies), replies
    assert all(language_of(r) == "en" for r in replies if len(r.split()) >= 4), replies

    # The conversation id: random, 32 hex characters, kept in localStorage.
    conversation_id = session_id(page)
    assert re.fullmatch(r"[0-9a-f]{32}", conversation_id), conversation_id
    assert page.evaluate("JSON.parse(localStorage.getItem('helder.session')).id") == conversation_id

    # An agent claims the case and writes: the customer sees the reply with the agent's name.
    agent = AgentApi(stack)
    try:
        case = agent.case_of(conversation_id)
        assert case["channel"] == "socketio" and case["language"] == "en"
        assert agent.post(f"/api/cases/{case['id']}/claim").status_code == 200
        reply = "Hello, this is Eva from Helder. I have your question in front of me."
        assert agent.post(f"/api/cases/{case['id']}/messages", {"text": reply}).status_code == 200
        line = messages(page, "agent").filter(has_text=reply)
        expect(line).to_be_visible()
        expect(line.get_by_test_id("hw-agent-name")).to_have_text(AGENT[1])
        expect(page.get_by_test_id("hw-system").filter(has_text=f"{AGENT[1]} joined")).to_have_count(1)

        # The network drops; what the agent writes meanwhile arrives once after the reconnect.
        page.context.set_offline(True)
        expect(page.get_by_test_id("hw-status")).to_contain_text("Reconnecting")
        missed = "Are you still there? I found your order."
        assert agent.post(f"/api/cases/{case['id']}/messages", {"text": missed}).status_code == 200
        time.sleep(1)
        page.context.set_offline(False)
        expect(messages(page, "agent").filter(has_text=missed)).to_have_count(1, timeout=20_000)
        expect(page.get_by_test_id("hw-status")).to_be_hidden()
        expect(messages(page, "agent")).to_have_count(2)

        # A reload, then another page of the shop: the same conversation with its history.
        for url in (None, f"{shop_url(stack)}/orders"):
            page.reload() if url is None else page.goto(url)
            expect(page.get_by_test_id("hw-panel")).to_be_visible()  # it stays open across pages
            expect(messages(page, "customer").filter(has_text="i want to talk to a human")).to_have_count(1)
            expect(messages(page, "agent").filter(has_text=reply)).to_have_count(1)
            expect(messages(page, "agent").filter(has_text=missed)).to_have_count(1)
            expect(messages(page, "agent").first.get_by_test_id("hw-agent-name")).to_have_text(AGENT[1])
            expect(page.get_by_test_id("hw-system").filter(has_text=f"{AGENT[1]} joined")).to_have_count(1)
            for text in replies:
                expect(messages(page, "bot").filter(has_text=text)).to_have_count(1)
            assert session_id(page) == conversation_id

        # Hand back: the customer is told the assistant is back.
        assert agent.post(f"/api/cases/{case['id']}/handback").status_code == 200
        expect(page.get_by_test_id("hw-system").filter(has_text="You're back with the assistant")).to_be_visible()
        assert bot_texts(page)[-1] not in replies
    finally:
        agent.close()


def test_signed_in_dutch_customer_gets_dutch_answers_and_the_shop_token_is_sent(shop_page: Any, stack: Stack) -> None:
    page = shop_page
    page.goto(f"{shop_url(stack)}/?lang=nl")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    page.get_by_label("Demoklant").select_option(DEMO_CUSTOMER)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("signed-in")).to_contain_text(DEMO_CUSTOMER)

    # The page embeds a fresh shop token: HS256 with the shared secret, the customer number, <= 1 h.
    tag = page.locator("script[data-shop-token]")
    token = tag.get_attribute("data-shop-token")
    claims = jwt.decode(token, stack.shop_token_secret, algorithms=["HS256"])
    assert claims["sub"] == DEMO_CUSTOMER and 0 < claims["exp"] - claims["iat"] <= 3600
    assert tag.get_attribute("data-locale") == "nl-NL"

    open_widget(page, "Chat met ons")
    expect(page.get_by_label("Uw bericht")).to_have_attribute("placeholder", "Typ uw bericht…")
    expect(page.get_by_role("button", name="Versturen")).to_be_visible()
    say(page, "waar is mijn bestelling")
    replies = wait_for_bot_replies(page, 0)
    long_replies = [r for r in replies if len(r.split()) >= 4]
    assert long_replies, replies
    assert all(language_of(r) == "nl" for r in long_replies), replies

    # Rasa got the widget's metadata with the message: the page locale and the shop token.
    events = tracker(stack, session_id(page))["events"]
    user = [e for e in events if e["event"] == "user" and e.get("text") == "waar is mijn bestelling"][-1]
    assert user["input_channel"] == "socketio"
    assert user["metadata"]["locale"] == "nl-NL"
    assert jwt.decode(user["metadata"]["shop_token"], stack.shop_token_secret, algorithms=["HS256"])["sub"] == DEMO_CUSTOMER

    # Signing out starts a new conversation: the next person on this computer sees nothing of it.
    first = session_id(page)
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("sign-in")).to_be_visible()
    expect(messages(page, "customer")).to_have_count(0)
    assert session_id(page) != first


def test_quick_replies_and_the_whole_widget_work_from_the_keyboard(shop_page: Any, stack: Stack) -> None:
    page = shop_page
    page.goto(f"{shop_url(stack)}/?lang=en")
    launcher = page.get_by_role("button", name="Chat with us")
    launcher.focus()
    page.keyboard.press("Enter")
    field = page.get_by_test_id("hw-input")
    expect(field).to_be_focused()
    page.keyboard.type("when are you open")
    page.keyboard.press("Enter")
    wait_for_bot_replies(page, 0)

    # A bot message with buttons (as utter_did_you_mean_* sends), through Rasa's API to this chat.
    question = "I'm not sure I understood you. Is it about the status of an order?"
    response = httpx.post(
        f"{stack.rasa_url}/conversations/{session_id(page)}/tracker/events",
        params={"execute_side_effects": "true", "output_channel": "latest"}, headers=stack.auth_headers(),
        json={"event": "bot", "text": question,
              "data": {"buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    expect(messages(page, "bot").filter(has_text=question)).to_be_visible()
    group = page.get_by_role("group", name="Quick replies")
    expect(group.get_by_role("button")).to_have_count(2)

    # From the message field, Shift+Tab reaches the replies (last first); Enter picks one.
    field.focus()
    page.keyboard.press("Shift+Tab")
    expect(group.get_by_role("button", name="No")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    yes = group.get_by_role("button", name="Yes")
    expect(yes).to_be_focused()
    page.keyboard.press("Enter")
    # The title is shown, the payload is sent; the buttons are gone once answered.
    expect(messages(page, "customer").filter(has_text=re.compile(r"^\s*(You: )?Yes\s*$"))).to_have_count(1)
    expect(page.get_by_test_id("hw-replies")).to_have_count(0)
    deadline = time.monotonic() + 20
    while user_texts(stack, session_id(page))[-1] != "/affirm":
        assert time.monotonic() < deadline, user_texts(stack, session_id(page))
        time.sleep(0.2)

    # Escape closes the chat and gives the focus back to the launcher; Enter opens it again.
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("hw-panel")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("hw-panel")).to_be_visible()
    expect(field).to_be_focused()
    # Labelled for screen readers: a dialog with a name, a log, a labelled field and buttons.
    expect(page.get_by_role("dialog", name="Helder customer service")).to_be_visible()
    expect(page.get_by_role("log", name="Conversation")).to_be_visible()
    expect(page.get_by_role("button", name="Close chat")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_visible()


def test_widget_is_usable_on_a_phone_360_pixels_wide(browser: Any, stack: Stack) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="nl-NL")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: List[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{shop_url(stack)}/product?lang=nl")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the shop page scrolls sideways"
        launcher = page.get_by_role("button", name="Chat met ons")
        box = launcher.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["y"] + box["height"] <= 740
        launcher.tap()
        say(page, "wanneer zijn jullie open")
        replies = wait_for_bot_replies(page, 0)
        assert replies

        panel = page.get_by_test_id("hw-panel").bounding_box()
        assert panel == {"x": 0, "y": 0, "width": 360, "height": 740}, panel  # the whole screen
        for name in ("hw-input", "hw-send", "hw-close"):
            part = page.get_by_test_id(name).bounding_box()
            assert part and part["x"] >= 0 and part["x"] + part["width"] <= 360 and part["y"] + part["height"] <= 740, name
            assert part["height"] >= 40, f"{name} is too small to tap: {part}"
        for bubble in page.locator(".hw-bubble").all():
            b = bubble.bounding_box()
            assert b and b["x"] >= 0 and b["x"] + b["width"] <= 360, "a message is wider than the screen"
        page.screenshot(path=MOBILE_SCREENSHOT)
    finally:
        context.close()
    assert not errors, errors


SOCKET_JS = """async ({url, requested}) => {
    const socket = io(url, {path: '/socket.io', transports: ['websocket'], forceNew: true});
    const received = [];
    socket.on('bot_uttered', (message) => received.push(message));
    await new Promise((resolve) => socket.on('connect', resolve));
    const confirmed = await new Promise((resolve) => {
        socket.once('session_confirm', resolve);
        socket.emit('session_request', {session_id: requested});
    });
    window.testSockets = (window.testSockets || []).concat([{socket, received}]);
    return confirmed;
}"""


def test_the_channel_sends_whole_messages_and_keeps_sessions_apart(shop_page: Any, stack: Stack) -> None:
    """bot/channels/webchat.py as a browser sees it: guessable ids refused, one socket writes only
    to its own session, messages arrive whole with public metadata only."""
    page = shop_page
    page.goto(f"{shop_url(stack)}/?lang=en")
    page.add_script_tag(url=f"{shop_url(stack)}/widget/vendor/socket.io.min.js")

    # A phone number (a WhatsApp conversation's id) or any short id is not accepted as a session.
    given = page.evaluate(SOCKET_JS, {"url": stack.rasa_url, "requested": "31612345678"})
    assert re.fullmatch(r"[0-9a-f]{32}", given) and given != "31612345678"

    mine, other = uuid.uuid4().hex, uuid.uuid4().hex
    assert page.evaluate(SOCKET_JS, {"url": stack.rasa_url, "requested": mine}) == mine
    emit = "([message, session, data]) => window.testSockets[1].socket.emit('user_uttered', " \
           "{message, session_id: session, customData: data})"
    page.evaluate(emit, ["hello from the wrong socket", other, {}])
    page.evaluate(emit, ["when are you open", mine, {"locale": "en-GB"}])
    deadline = time.monotonic() + 30
    while "when are you open" not in user_texts(stack, mine):
        assert time.monotonic() < deadline, "the message to the socket's own session did not arrive"
        time.sleep(0.2)
    assert user_texts(stack, other) == [] and "hello from the wrong socket" not in user_texts(stack, mine)
    user = [e for e in tracker(stack, mine)["events"] if e["event"] == "user"][-1]
    assert user["input_channel"] == "socketio" and user["metadata"]["locale"] == "en-GB"

    # An agent's message with paragraphs and internal metadata: one event, whole text, public metadata.
    count = page.evaluate("window.testSockets[1].received.length")
    text = "First paragraph.\n\nSecond paragraph."
    response = httpx.post(
        f"{stack.rasa_url}/conversations/{mine}/tracker/events",
        params={"execute_side_effects": "true", "output_channel": "latest"}, headers=stack.auth_headers(),
        json={"event": "bot", "text": text,
              "metadata": {"agent_id": "eva", "agent_name": "Eva de Jong", "internal_note": "not for customers"}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 10
    while page.evaluate("window.testSockets[1].received.length") == count:
        assert time.monotonic() < deadline, "the agent's message did not reach the socket"
        time.sleep(0.1)
    time.sleep(0.5)
    received = page.evaluate("window.testSockets[1].received")[count:]
    assert received == [{"text": text, "metadata": {"agent_id": "eva", "agent_name": "Eva de Jong"}}], received
