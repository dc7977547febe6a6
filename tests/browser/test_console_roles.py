"""The console follows the agent's role: a colleague's case is read-only for an agent, and a
supervisor can take it over ("Take over from <name>"); the service checks the same again."""

from __future__ import annotations

from playwright.sync_api import expect

from contract import keys
from tests.browser.conftest import new_conversation_id, packet, sign_in, user_event


def test_a_supervisor_can_take_over_a_colleagues_case_an_agent_cannot(page, service, fake_rasa):
    conversation_id = new_conversation_id("supervise")
    case_id = service.open_case(packet(conversation_id))["case_id"]
    bob = service.agent_client("bob")
    try:
        assert bob.post(f"/api/cases/{case_id}/claim").status_code == 200
    finally:
        bob.close()
    text = "Waar blijft mijn bestelling? " + conversation_id
    service.publish(conversation_id, user_event(text))

    def open_the_conversation() -> None:
        item = page.get_by_test_id("conversation-item").filter(has_text=text)
        expect(item).to_contain_text("Bob de Boer")
        item.click()
        expect(page.locator("#owner-info")).to_contain_text("Claimed by Bob de Boer")

    try:
        sign_in(page, service)  # Eva, an agent
        expect(page.locator("#me")).not_to_contain_text("(")
        open_the_conversation()
        expect(page.get_by_test_id("claim-button")).to_be_disabled()
        expect(page.get_by_test_id("reply-input")).to_be_disabled()
        expect(page.get_by_test_id("handback-button")).to_be_disabled()

        service.redis.hset(keys.agent("eva"), "role", "supervisor")
        page.reload()
        expect(page.locator("#me")).to_contain_text("(supervisor)")
        open_the_conversation()
        claim = page.get_by_test_id("claim-button")
        expect(claim).to_have_text("Take over from Bob de Boer")
        expect(claim).to_be_enabled()
        claim.click()
        fake_rasa.wait_for(conversation_id, lambda r: isinstance(r["json"], dict)
                           and r["json"].get("name") == "action_agent_joined" and r["path"].endswith("/execute")
                           and any(isinstance(x["json"], dict) and x["json"].get("value") == "Eva de Jong"
                                   for x in fake_rasa.calls(conversation_id)))
        expect(page.locator("#owner-info")).to_have_text("You own this case")
        expect(page.get_by_test_id("reply-input")).to_be_enabled()
        expect(page.get_by_test_id("alert")).to_be_empty()
    finally:
        service.redis.hset(keys.agent("eva"), "role", "agent")
