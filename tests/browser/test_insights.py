"""The insights page in headless Chromium: a supervisor sees charts drawn from conversations that
went through the service's real consumer; an agent gets a 403 and no link to it."""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict

from playwright.sync_api import expect

from contract import keys
from tests.browser.conftest import bot_event, new_conversation_id, sign_in

CHANNEL = "insightstest"  # the page is filtered to this channel: only this test's conversations


def slot(name: str, value: Any) -> Dict[str, Any]:
    return {"event": "slot", "timestamp": time.time(), "name": name, "value": value}


def user(text: str, language: str) -> Dict[str, Any]:
    return {"event": "user", "timestamp": time.time(), "text": text, "input_channel": CHANNEL,
            "parse_data": {"text": text, "intent": {"name": "x"}, "language": language}}


def promise_made(service, conversation_id: str, kind: str) -> None:
    """A promise as the customer backend publishes it (actions/backend/promise_events.py), due in two days."""
    now = datetime.now(timezone.utc)
    service.redis.xadd(keys.PROMISE_EVENTS_STREAM, {
        "event": "made", "promise_id": f"browser-{uuid.uuid4().hex[:8]}", "kind": kind,
        "due_at": (now + timedelta(days=2)).isoformat(), "at": now.isoformat(), "conversation_id": conversation_id})


def publish_demo_week(service) -> Dict[str, str]:
    """Three solved questions (a resend promised in the first), a complaint handed to a person and
    claimed, a repeat contact."""
    customer = str(10_000_000 + uuid.uuid4().int % 89_999_999)
    ids = {}
    for key, language, topic, words, outcome in [
        ("order", "nl", "order_status", "Waar blijft mijn pakket? Mijn mail is test@example.nl", "solved"),
        ("order_again", "nl", "order_status", "Mijn pakket is er nog steeds niet", "solved"),
        ("outage", "nl", "report_outage", "Mijn internet doet het al de hele dag niet", "solved"),
        ("password", "en", "account_access", "I cannot log in to my account", "solved"),
        ("complaint", "en", "complaint", "I want to complain about the delivery", "handed"),
    ]:
        conversation_id = ids[key] = new_conversation_id("insights")
        events = [user(words, language), slot("language", language), slot("problem_intent", topic),
                  slot("problem_description", words), slot("customer_id", customer)]
        if topic == "report_outage":
            events.append(slot("topic_facts", {"outage_id": "OUT-BROWSER", "postcode": "3581 KP"}))
        if outcome == "solved":
            events.append(bot_event("…", utter_action="utter_anything_else"))
        else:
            case_id = service.open_case({"conversation_id": conversation_id, "reason": "complexity",
                                         "language": language, "channel": CHANNEL,
                                         "identity": {"customer_id": customer}})["case_id"]
            events += [slot("handoff_reason", "complexity"), slot("handoff_case_id", case_id),
                       {"event": "pause", "timestamp": time.time()}]
            ids["case"] = case_id
        for event in events:
            if key == "order" and event is events[-1]:
                promise_made(service, conversation_id, "redelivery")  # before the turn's events, as the backend does
            service.publish(conversation_id, event)
    bob = service.agent_client("bob")
    try:
        assert bob.post(f"/api/cases/{ids['case']}/claim").status_code == 200
    finally:
        bob.close()
    service.publish(ids["complaint"], bot_event("Hello, this is Bob.", agent_id="bob", agent_name="Bob de Boer"))
    return ids


def wait_for_report(service, predicate, timeout: float = 15.0) -> Dict[str, Any]:
    client = service.agent_client("eva")
    try:
        deadline = time.monotonic() + timeout
        while True:
            report = client.client.get("/api/insights", params={"channel": CHANNEL}).json()
            if predicate(report) or time.monotonic() > deadline:
                return report
            time.sleep(0.2)
    finally:
        client.close()


def test_a_supervisor_sees_the_charts_an_agent_gets_403(page, service, tmp_path):
    service.redis.hset(keys.agent("eva"), "role", "supervisor")
    try:
        publish_demo_week(service)
        report = wait_for_report(service, lambda r: r["totals"]["contacts"] == 5
                                 and r["waiting"]["wait_for_person"]["count"] == 1
                                 and r["backend_promises"]["total"]["made"] == 1)
        assert report["backend_promises"]["total"]["made"] == 1, report["backend_promises"]
        assert report["totals"]["contacts"] == 5, report["totals"]

        sign_in(page, service)
        link = page.get_by_test_id("insights-link")
        expect(link).to_be_visible()
        link.click()
        page.wait_for_url(f"{service.url}/insights")
        page.get_by_test_id("channel").select_option(CHANNEL)
        expect(page.locator("#kpi-contacts")).to_have_text("5")
        expect(page.locator("#kpi-solved")).to_have_text("4")
        expect(page.locator("#kpi-handed")).to_have_text("1")
        expect(page.locator("#kpi-repeat")).to_have_text("1")
        rows = page.get_by_test_id("topics-table").locator("tbody tr")
        expect(rows).to_have_count(4)
        expect(rows.filter(has_text="Bestelstatus")).to_contain_text("2")
        expect(rows.filter(has_text="Complaint")).to_contain_text("complex 1")
        expect(page.get_by_test_id("outages")).to_contain_text("OUT-BROWSER: 1 contact")
        # The backend's promises per kind, next to the case reply promises.
        promises = page.get_by_test_id("promises-table")
        expect(promises.locator("tr[data-kind=reply]")).to_contain_text("Case replies")
        expect(promises.locator("tr[data-kind=redelivery] td")).to_have_text(["1", "0", "0", "0", "1"])
        expect(page.get_by_test_id("snippets")).to_contain_text("Waar blijft mijn pakket? Mijn mail is [email]")
        expect(page.get_by_test_id("snippets")).not_to_contain_text("test@example.nl")
        # The charts are drawn by Chart.js (served by the service from npm's package) with this data.
        drawn = page.evaluate("""() => ['chart-daily', 'chart-outcomes', 'chart-waits'].map((id) => {
            const chart = window.Chart.getChart(id);
            return chart ? chart.data.datasets.reduce((sum, d) => sum + d.data.reduce((a, b) => a + b, 0), 0) : -1;
        })""")
        assert drawn == [5, 5, 1], drawn
        for size in ({"width": 1280, "height": 900}, {"width": 1440, "height": 900}):
            page.set_viewport_size(size)
            overflow = page.evaluate("""() => Math.max(document.documentElement.scrollWidth,
                ...[...document.querySelectorAll('.card, .kpi, .topbar')].map((e) => e.getBoundingClientRect().right))
                - window.innerWidth""")
            assert overflow <= 0, f"wider than the window at {size['width']} px"
        # The whole page in one window (a full-page screenshot would change the scrollbar, and with
        # it the charts' width, while it shoots).
        height = page.evaluate("() => document.documentElement.scrollHeight")
        page.set_viewport_size({"width": 1280, "height": height + 20})
        # Chart.js redraws on its ResizeObserver: wait until every chart fits its box again.
        page.wait_for_function("""() => ['chart-daily', 'chart-outcomes', 'chart-waits'].every((id) => {
            const chart = window.Chart.getChart(id);
            const box = document.getElementById(id).parentElement;
            return chart && Math.abs(chart.width - box.clientWidth) < 2 && Math.abs(chart.height - box.clientHeight) < 2;
        })""")
        shot = Path(os.environ.get("HELDER_INSIGHTS_SCREENSHOT") or tmp_path / "insights.png")
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 20_000

        # An agent: no link, and the page and the API refuse.
        service.redis.hset(keys.agent("eva"), "role", "agent")
        page.goto(f"{service.url}/")
        expect(page.locator("#me")).to_be_visible()
        expect(page.get_by_test_id("insights-link")).to_be_hidden()
        response = page.goto(f"{service.url}/insights")
        assert response is not None and response.status == 403
        assert page.request.get(f"{service.url}/api/insights").status == 403
    finally:
        service.redis.hset(keys.agent("eva"), "role", "agent")
