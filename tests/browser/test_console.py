"""The agent console as an agent uses it: sign in, pick a case, read its context, take over,
reply, note, hand back; live updates over the websocket; conflicts shown, not swallowed."""

from __future__ import annotations

import json
import re
import time

from playwright.sync_api import expect

from contract import keys

from tests.browser.conftest import (
    PASSWORD, bot_event, new_conversation_id, packet, sign_in, user_event,
)

SCREENSHOT = "/tmp/console.png"


def is_agent_message(request, text=None):
    """The service appended an agent's message to the Rasa tracker (sent to the customer)."""
    body = request["json"] if isinstance(request["json"], dict) else {}
    return (request["method"] == "POST" and request["path"].endswith("/tracker/events")
            and body.get("event") == "bot" and (text is None or body.get("text") == text))


def is_event(request, name):
    body = request["json"] if isinstance(request["json"], dict) else {}
    return request["method"] == "POST" and request["path"].endswith("/tracker/events") and body.get("event") == name


def test_agent_signs_in_takes_over_replies_notes_and_hands_back(page, service, fake_rasa):
    conversation_id = new_conversation_id("console")
    started = time.time() - 200
    service.publish(conversation_id, user_event("mijn föhn is na twee dagen kapot gegaan", at=started))
    service.publish(conversation_id, bot_event("Ik ben de digitale assistent van Helder. U kunt altijd "
                                               "om een medewerker vragen. Wat is uw klantnummer?",
                                               at=started + 2, utter_action="utter_ask_identifier"))
    service.publish(conversation_id, user_event("48213377, postcode 3511 AB", at=started + 30))
    service.publish(conversation_id, bot_event("Ik zet u door naar een medewerker.", at=started + 32))
    service.nobody_available()
    created = service.open_case(packet(conversation_id))
    case_id = created["case_id"]
    assert created["status"] == "no_agents"  # so the customer was promised a reply time

    # Not signed in: the console sends you to the sign-in page.
    page.goto(f"{service.url}/")
    expect(page).to_have_url(re.compile(r"/login"))

    # A wrong password is refused with a visible message, and you can try again.
    page.get_by_label("Username").fill("eva")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_be_visible()
    expect(page.get_by_test_id("login-error")).to_contain_text("Wrong username or password")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")  # the form works from the keyboard
    page.wait_for_url(f"{service.url}/")

    # The queue shows who is waiting, how, why and for how long; the waiting time ticks.
    item = page.get_by_test_id("queue-item").filter(has_text="Sanne de Vries")
    expect(item).to_be_visible()
    expect(item).to_contain_text("NL")
    expect(item).to_contain_text("website chat")
    expect(item).to_contain_text("too complex")
    wait = item.locator(".wait")
    expect(wait).to_have_text(re.compile(r"^\d{2,}:\d{2}$"))
    before = wait.inner_text()
    expect(wait).not_to_have_text(before, timeout=3000)

    # The context card: everything the bot knew, without asking the customer again.
    item.click()
    card = page.get_by_test_id("context-card")
    expect(card).to_be_visible()
    expect(page.get_by_test_id("card-problem")).to_have_text("mijn föhn is na twee dagen kapot gegaan")
    identity = page.get_by_test_id("card-identity")
    expect(identity).to_contain_text("Sanne de Vries")
    expect(identity).to_contain_text("48213377")
    expect(identity).to_contain_text("customer number + postcode")
    expect(page.get_by_test_id("card-reason")).to_contain_text("Too complex for the bot")
    attempts = page.get_by_test_id("card-attempts").locator("li")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("order 2024118832 delivered")
    expect(attempts.nth(1)).to_contain_text("Defective product")
    expect(card).to_contain_text("Dutch")
    expect(card).to_contain_text("2024118832")  # an entity
    promise = page.get_by_test_id("card-promise")
    expect(promise).to_contain_text("Reply by")
    expect(promise).not_to_contain_text("overdue")

    # The transcript: customer and bot lines, told apart.
    lines = page.get_by_test_id("transcript-line")
    expect(lines.filter(has_text="48213377, postcode 3511 AB")).to_have_attribute("data-from", "customer")
    expect(lines.filter(has_text="Ik zet u door naar een medewerker.")).to_have_attribute("data-from", "bot")

    # Only the owner may reply: take over first.
    reply = page.get_by_test_id("reply-input")
    expect(reply).to_be_disabled()
    expect(page.get_by_test_id("handback-button")).to_be_disabled()
    page.get_by_test_id("claim-button").click()
    expect(reply).to_be_enabled()
    expect(page.get_by_test_id("context-card")).to_be_visible()
    expect(page.get_by_test_id("queue-item").filter(has_text="Sanne de Vries")).to_have_count(0)

    # Shift+Enter is a new line, Enter sends.
    reply.fill("Goedemiddag mevrouw De Vries,")
    reply.press("Shift+Enter")
    reply.type("ik stuur u vandaag een nieuwe föhn.")
    assert reply.input_value() == "Goedemiddag mevrouw De Vries,\nik stuur u vandaag een nieuwe föhn."
    assert not any(is_agent_message(r) for r in fake_rasa.calls(conversation_id))
    text = reply.input_value()
    reply.press("Enter")
    sent = fake_rasa.wait_for(conversation_id, lambda r: is_agent_message(r, text))
    assert sent["json"]["metadata"]["agent_name"] == "Eva de Jong"
    assert sent["json"]["metadata"]["agent_id"] == "eva"
    assert sent["query"].get("execute_side_effects") == "true"
    assert sent["query"].get("output_channel") == "latest"
    assert sent["role"] is not None  # signed with the shared secret
    expect(reply).to_have_value("")
    expect(promise).to_contain_text("kept")  # the promised reply was given

    # Rasa's event broker carries the agent's message back (with the metadata the service gave
    # it): the message shows once, as the agent's, labelled with her name.
    service.publish(conversation_id, bot_event(text, **sent["json"]["metadata"]))
    mine = lines.filter(has_text="ik stuur u vandaag een nieuwe föhn")
    expect(mine).to_have_count(1)
    expect(mine).to_have_attribute("data-from", "agent")
    expect(mine).to_contain_text("Eva de Jong")

    # A private note shows in the card, marked private, and never goes to Rasa.
    note = "Klant wil een bevestiging per e-mail"
    page.get_by_test_id("note-input").fill(note)
    page.get_by_test_id("note-add").click()
    notes = page.get_by_test_id("card-notes")
    expect(notes).to_contain_text(note)
    expect(notes.locator(".note").filter(has_text=note)).to_contain_text("private")
    assert not any(note in str(r["json"]) for r in fake_rasa.calls(conversation_id))

    # Hand back: Rasa resumes and runs the hand-back action; the reply box closes.
    page.get_by_test_id("handback-button").click()
    resume = fake_rasa.wait_for(conversation_id, lambda r: is_event(r, "resume"))
    handback = fake_rasa.wait_for(conversation_id, lambda r: r["path"].endswith("/execute")
                                  and (r["json"] or {}).get("name") == "action_handback")
    assert handback["json"] == {"name": "action_handback"} or handback["json"].get("name") == "action_handback"
    requests = fake_rasa.calls(conversation_id)
    assert requests.index(resume) < requests.index(handback), "resume must come before action_handback"
    expect(reply).to_be_disabled()
    expect(page.get_by_test_id("handback-button")).to_be_disabled()
    expect(page.get_by_test_id("claim-button")).to_be_enabled()  # the bot has it; one can take over again

    # Resolve with the outcome: the case stays visible, closed, with what was done.
    page.get_by_test_id("resolve-input").fill("Nieuwe föhn verstuurd, bevestiging per e-mail")
    page.get_by_test_id("resolve-button").click()
    expect(page.locator("#case-subtitle")).to_contain_text("Resolved")
    expect(page.locator("#case-subtitle")).to_contain_text("Nieuwe föhn verstuurd")
    expect(page.get_by_test_id("resolve-input")).to_be_disabled()
    expect(page.get_by_test_id("alert")).to_be_empty()

    # The open case survives a reload (its id is in the address).
    assert case_id in page.url
    page.reload()
    expect(page.get_by_test_id("card-problem")).to_have_text("mijn föhn is na twee dagen kapot gegaan")
    expect(lines.filter(has_text="ik stuur u vandaag een nieuwe föhn")).to_have_count(1)

    page.locator("#detail").evaluate("node => { node.scrollTop = node.scrollHeight; }")
    page.screenshot(path=SCREENSHOT.replace(".png", "-transcript.png"))
    page.locator("#detail").evaluate("node => { node.scrollTop = 0; }")
    page.screenshot(path=SCREENSHOT)


def test_an_overdue_promise_stands_out(page, service):
    conversation_id = new_conversation_id("overdue")
    service.nobody_available()
    created = service.open_case(packet(
        conversation_id, identity={"customer_id": "48213455", "name": "Fatima el Amrani",
                                   "verified_by": "phone", "verified_at": None}, channel="whatsapp"))
    assert created["status"] == "no_agents"
    # Time travel: the promised reply time has passed (the promise is stored with the case).
    stored = json.loads(service.redis.hget(keys.case(created["case_id"]), "promise"))
    stored["due_at"] = "2020-01-06T09:00:00Z"
    service.redis.hset(keys.case(created["case_id"]), "promise", json.dumps(stored))

    sign_in(page, service)
    item = page.get_by_test_id("queue-item").filter(has_text="Fatima el Amrani")
    badge = item.get_by_text("overdue")
    expect(badge).to_be_visible()
    expect(badge).to_have_css("background-color", "rgb(180, 35, 24)")  # red, white text
    item.click()
    expect(page.get_by_test_id("card-promise")).to_contain_text("overdue")
    expect(page.get_by_test_id("card-promise")).to_contain_text("via WhatsApp")


def test_customer_lines_and_new_cases_arrive_live(page, service):
    conversation_id = new_conversation_id("live")
    service.publish(conversation_id, user_event("My order never arrived"))
    service.open_case(packet(
        conversation_id, language="en", reason="request",
        identity={"customer_id": "51120043", "name": "Pieter Bakker", "verified_by": "phone", "verified_at": None},
        problem_description="My order never arrived", intent="order_status", bot_attempts=[],
        channel="whatsapp", transcript=[]))
    sign_in(page, service)
    page.get_by_test_id("queue-item").filter(has_text="Pieter Bakker").click()
    expect(page.get_by_test_id("card-problem")).to_have_text("My order never arrived")
    expect(page.get_by_test_id("card-reason")).to_contain_text("asked for a person")
    lines = page.get_by_test_id("transcript-line")
    expect(lines.filter(has_text="My order never arrived")).to_have_count(1)
    expect(page.locator("#connection")).to_have_text("Live")

    # A customer line published while the case is open appears without a reload.
    page.evaluate("window.__same_page = true")
    service.publish(conversation_id, user_event("Hello? Is anyone there?", channel="whatsapp"))
    line = lines.filter(has_text="Hello? Is anyone there?")
    expect(line).to_have_count(1)
    expect(line).to_have_attribute("data-from", "customer")
    expect(page.get_by_test_id("conversation-item").filter(has_text="Hello? Is anyone there?")).to_be_visible()

    # So does a new case in the queue.
    other = new_conversation_id("live-new")
    service.publish(other, user_event("Ik wil een medewerker"))
    service.open_case(packet(other, reason="request",
                             identity={"customer_id": None, "name": None, "verified_by": None, "verified_at": None},
                             problem_description="Ik wil een medewerker"))
    expect(page.get_by_test_id("queue-item").filter(has_text="unknown")).not_to_have_count(0)
    assert page.evaluate("window.__same_page") is True


def test_the_console_fetches_again_when_the_service_missed_pushes(page, service):
    """Redis pub/sub keeps nothing for a subscriber that is away: when the service's subscription
    comes back (Redis restarted), it tells the consoles to fetch what they may have missed."""
    conversation_id = new_conversation_id("resync")
    created = service.open_case(packet(
        conversation_id, language="en", reason="request",
        identity={"customer_id": "60418825", "name": "Emily Clarke", "verified_by": "postcode", "verified_at": None},
        problem_description="The kettle leaks", intent="product_defect", bot_attempts=[], transcript=[]))
    sign_in(page, service)
    page.get_by_test_id("queue-item").filter(has_text="Emily Clarke").click()
    expect(page.get_by_test_id("card-problem")).to_have_text("The kettle leaks")
    page.evaluate("window.__same_page = true")

    # A colleague's note whose push was lost while the service was not subscribed ...
    missed = "Klant belde gisteren ook al"
    service.redis.rpush(keys.case_notes(created["case_id"]), json.dumps(
        {"agent": "noah", "text": missed, "at": "2026-12-04T10:00:00Z"}))
    notes = page.get_by_test_id("card-notes")
    page.wait_for_timeout(300)
    expect(notes).not_to_contain_text(missed)
    # ... then Redis drops the service's subscription; it subscribes again and sends a resync.
    assert service.redis.client_kill_filter(_type="pubsub") >= 1
    expect(notes).to_contain_text(missed)
    assert page.evaluate("window.__same_page") is True
    expect(page.locator("#connection")).to_have_text("Live")


def test_claim_conflict_is_shown_in_the_alert(page, service):
    conversation_id = new_conversation_id("conflict")
    case_id = service.open_case(packet(
        conversation_id, identity={"customer_id": "48213399", "name": "Joost Mulder",
                                   "verified_by": "email+postcode", "verified_at": None}))["case_id"]
    # No live updates in this test, so the console does not learn of Bob's claim before Eva clicks.
    page.route_web_socket(re.compile(r"/ws$"), lambda ws: None)
    sign_in(page, service)
    page.get_by_test_id("queue-item").filter(has_text="Joost Mulder").click()
    expect(page.get_by_test_id("card-identity")).to_contain_text("Joost Mulder")

    bob = service.agent_client("bob")
    try:
        assert bob.post(f"/api/cases/{case_id}/claim").status_code == 200
    finally:
        bob.close()

    page.get_by_test_id("claim-button").click()
    alert = page.get_by_test_id("alert")
    expect(alert).to_contain_text("claimed by Bob de Boer")
    assert alert.get_attribute("role") == "alert"
    expect(page.get_by_test_id("reply-input")).to_be_disabled()
    expect(page.locator("#owner-info")).to_contain_text("Bob de Boer")


def test_agent_takes_over_a_conversation_the_bot_handles(page, service, fake_rasa):
    conversation_id = new_conversation_id("takeover")
    fake_rasa.trackers[conversation_id] = {
        "sender_id": conversation_id, "paused": False, "latest_input_channel": "socketio",
        "slots": {"customer_id": "48213412", "customer_name": "Lotte Visser", "language": "nl",
                  "identity_verified_by": "token", "problem_description": "Mijn pakket is beschadigd aangekomen",
                  "bot_attempts": []},
        "latest_message": {"text": "Mijn pakket is beschadigd aangekomen",
                           "intent": {"name": "defective_product", "confidence": 0.9}, "entities": []},
        "events": [user_event("Mijn pakket is beschadigd aangekomen"),
                   bot_event("Wat vervelend. Welk product gaat het om?")],
    }
    service.publish(conversation_id, user_event("Mijn pakket is beschadigd aangekomen"))
    service.publish(conversation_id, bot_event("Welk product gaat het om?"))
    sign_in(page, service)

    item = page.get_by_test_id("conversation-item").filter(has_text="Welk product gaat het om?")
    expect(item).to_contain_text("bot")
    item.click()
    lines = page.get_by_test_id("transcript-line")
    expect(lines.filter(has_text="Mijn pakket is beschadigd aangekomen")).to_have_attribute("data-from", "customer")
    expect(page.get_by_test_id("reply-input")).to_be_disabled()

    page.get_by_test_id("claim-button").click()
    fake_rasa.wait_for(conversation_id, lambda r: is_event(r, "pause"))
    expect(page.get_by_test_id("reply-input")).to_be_enabled()
    expect(page.get_by_test_id("card-reason")).to_contain_text("took the conversation over")
    expect(page.get_by_test_id("alert")).to_be_empty()


def test_the_console_reconnects_when_the_socket_drops_and_signs_out(page, service):
    sockets = []

    def through(ws):
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws$"), through)
    sign_in(page, service)
    connection = page.locator("#connection")
    expect(connection).to_have_text("Live")
    sockets[0].close()  # e.g. a proxy or a service restart drops it
    expect(connection).to_contain_text("reconnecting")
    expect(connection).to_have_text("Live")
    assert len(sockets) == 2

    # Live again: a conversation that starts now shows up without a reload.
    conversation_id = new_conversation_id("reconnect")
    service.publish(conversation_id, user_event("Hebben jullie vandaag open?"))
    expect(page.get_by_test_id("conversation-item").filter(has_text="Hebben jullie vandaag open?")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login"))
    page.goto(f"{service.url}/")
    expect(page).to_have_url(re.compile(r"/login"))
