"""Conversations the way customers really write them, against the real, running assistant.

Each conversation in ``tests/e2e/conversations/{nl,en}.yml`` is one test (id ``<language>-<name>``).
Format::

    - name: identity_first_then_outage
      locale: nl-NL                  # sent as metadata with every message; its language is the default
      language: nl                   # optional: the expected reply language when there is no locale
      turns:
        - say: "goedemiddag, ik ben klant 39481726, postcode 3581 KP"
          describes: true            # optional: this message is the customer's first description
          expect:
            contains: ["Lotte"]      # substrings (case-insensitive) that must all be in the replies
            contains_any: [...]      # at least one of them
            not_contains: [...]
            utters: [utter_identified, utter_outage_notice]   # all among this turn's responses
            utters_any: [utter_follow_up_*]                   # at least one ("*" ends a prefix)
            not_utters: [utter_ask_identifier]
            actions: [action_handoff]                         # actions run this turn
            not_actions: [action_handoff]
            slots: {customer_id: "39481726", handoff_case_id: "*"}   # "*": any non-empty value
            silent: true             # no reply at all
            language: en             # replies in this language (and from here on: a switch)
        - agent_claims: true         # an agent claims the conversation's case
        - agent_says: "..."          # the owning agent writes to the customer
        - agent_hands_back: true     # the owning agent hands the conversation back
      handoff: {reason: complexity, identity: "39481726"}   # a case must exist (identity null: none)

Without ``handoff`` the conversation must not open a case. Checked on every conversation:

1. identification is never asked once the customer is verified;
2. no question whose answer is known (slot filled, or the contact detail named by the customer);
3. no reply text three times in one conversation;
4. replies in the conversation's language (the locale's, or the last ``language`` a turn stated),
   and in Dutch "u" until the customer writes je/jij, then "je";
5. after a handoff, the case at the handoff service has the tracker's verified customer and the
   customer's first description (the agent's card is complete);
6. no reply with an empty or unfilled value ("{order_number}", "(tracking )").
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml

from scripts.clients import Agent, wait_until
from tests.e2e.conftest import Customer, assert_language

CONVERSATIONS = Path(__file__).parent / "conversations"
LANGUAGES = ("nl", "en")

EXPECT_KEYS = {"contains", "contains_any", "not_contains", "utters", "utters_any", "not_utters", "actions",
               "not_actions", "slots", "silent", "language"}
STEP_KEYS = {"say", "expect", "describes", "agent_claims", "agent_says", "agent_hands_back"}

IDENTITY_QUESTIONS = ("utter_ask_identifier", "utter_ask_postcode", "utter_ask_identifier_before_handoff",
                      "utter_ask_identifier_again", "utter_ask_postcode_again")
# A question and the slot that answers it: asking while the slot is filled is a loop.
ANSWERED_BY = {
    "utter_ask_identifier": "identifier",
    "utter_ask_postcode": "postcode",
    "utter_ask_identifier_again": "identifier",
    "utter_ask_postcode_again": "postcode",
    "utter_ask_contact_field": "contact_field",
    "utter_ask_new_contact_value": "new_contact_value",
    "utter_ask_which_product": "product",
}
# Words that name the contact detail to change (then "which detail?" is a question already answered).
CONTACT_FIELD_WORDS = re.compile(
    r"e-?mail|mailadres|\bmail\b|telefoon|gsm|mobiel|\bnummer\b|phone|mobile|\badres\b|address|verhuis|moving|move house",
    re.IGNORECASE)
# Replies meant for both languages at once.
BILINGUAL_RESPONSES = ("utter_unsupported_language",)
# A template value left empty or unfilled: "{carrier}", "()", "(tracking )".
EMPTY_VALUE = re.compile(r"\{[a-z_]+\}|\(\s*\)|\(\w+\s+\)")
INFORMAL = re.compile(r"\b(jij|jou|jouw|je)\b", re.IGNORECASE)
FORMAL = re.compile(r"\b(u|uw)\b", re.IGNORECASE)


def load_conversations() -> List[Any]:
    params = []
    for language in LANGUAGES:
        path = CONVERSATIONS / f"{language}.yml"
        conversations = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        names = [c["name"] for c in conversations]
        duplicates = [n for n, k in Counter(names).items() if k > 1]
        assert not duplicates, f"{path.name}: duplicate names {duplicates}"
        for conversation in conversations:
            # A conversation the assistant does not get right yet stays in the suite, visibly:
            # ``known_failure: <why>`` runs it as an expected failure (reported, listed in the issue).
            marks = [pytest.mark.xfail(reason=conversation["known_failure"], strict=False)] \
                if conversation.get("known_failure") else []
            params.append(pytest.param(language, conversation, id=f"{language}-{conversation['name']}", marks=marks))
    return params


def test_the_conversation_files_are_well_formed():
    for language in LANGUAGES:
        conversations = yaml.safe_load((CONVERSATIONS / f"{language}.yml").read_text(encoding="utf-8"))
        assert len(conversations) >= 32, f"{language}: only {len(conversations)} conversations"
        for conversation in conversations:
            assert set(conversation) <= {"name", "locale", "language", "metadata", "turns", "handoff", "note",
                                         "known_failure"}, conversation["name"]
            assert conversation.get("locale") or conversation.get("language"), conversation["name"]
            for step in conversation["turns"]:
                assert set(step) <= STEP_KEYS, (conversation["name"], step)
                assert set(step.get("expect") or {}) <= EXPECT_KEYS, (conversation["name"], step)
                assert "say" in step or any(k.startswith("agent_") for k in step), (conversation["name"], step)


# -- matching helpers ----------------------------------------------------------------------------
def matches(pattern: str, name: Optional[str]) -> bool:
    if not name:
        return False
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def any_match(pattern: str, names: List[Optional[str]]) -> bool:
    return any(matches(pattern, n) for n in names)


def is_agent_line(event: Dict[str, Any]) -> bool:
    return bool((event.get("metadata") or {}).get("agent_id"))


def utter_name(event: Dict[str, Any]) -> Optional[str]:
    return (event.get("metadata") or {}).get("utter_action")


class Conversation:
    """Plays one conversation, checking every turn and the rules of the whole conversation."""

    def __init__(self, stack, agent: Agent, language: str, spec: Dict[str, Any]) -> None:
        self.stack, self.agent, self.spec = stack, agent, spec
        metadata = dict(spec.get("metadata") or {})
        if spec.get("locale"):
            metadata.setdefault("locale", spec["locale"])
        self.customer = Customer(stack, metadata)
        self.language = spec.get("language") or (spec.get("locale") or language)[:2].lower()
        self.register = "u"
        self.seen_events = 0
        self.described: Optional[str] = None
        self.log: List[str] = []  # the conversation so far, for failure messages

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> None:
        for number, step in enumerate(self.spec["turns"], 1):
            if "say" in step:
                self.turn(number, step)
            elif step.get("agent_claims"):
                self.agent_step(number, "claim", arrived=lambda e: utter_name(e) == "utter_agent_joined")
            elif step.get("agent_says"):
                text = step["agent_says"]
                self.agent_step(number, "messages", {"text": text},
                                arrived=lambda e: is_agent_line(e) and e.get("text") == text)  # noqa: B023 (called in this step)
                self.log.append(f"  agent: {text}")
            elif step.get("agent_hands_back"):
                self.agent_step(number, "handback", arrived=lambda e: utter_name(e) == "utter_handback")
        tracker = self.customer.tracker()
        self.check_rules(tracker)
        self.check_handoff(tracker)

    def agent_step(self, number: int, what: str, body: Optional[Dict[str, Any]] = None, arrived=None) -> None:
        """An agent acts on the conversation's case; waits until its effect is in the tracker."""
        case_id = self.customer.slots().get("handoff_case_id")
        assert case_id, self.fail(number, f"agent {what}: the conversation has no case")
        response = self.agent.post(f"/api/cases/{case_id}/{what}", body)
        assert response.status_code == 200, self.fail(number, f"agent {what}: {response.status_code} {response.text}")

        def effect() -> Optional[List[Dict[str, Any]]]:
            events = self.customer.tracker()["events"]
            new = [e for e in events[self.seen_events:] if e["event"] == "bot"]
            return events if any(arrived(e) for e in new) else None

        try:
            events = wait_until(effect, timeout=15, interval=0.25)
        except AssertionError:
            raise AssertionError(self.fail(number, f"agent {what}: its effect never reached the conversation")) from None
        self.log += [f"  bot [{utter_name(e)}]: {e.get('text')}" for e in events[self.seen_events:]
                     if e["event"] == "bot" and not is_agent_line(e)]
        self.seen_events = len(events)

    def turn(self, number: int, step: Dict[str, Any]) -> None:
        text = str(step["say"])
        if step.get("describes"):
            self.described = text
        replies = self.customer.say(text)
        tracker = self.customer.tracker()
        events = tracker["events"][self.seen_events:]
        self.seen_events = len(tracker["events"])
        bots = [e for e in events if e["event"] == "bot" and not is_agent_line(e)]
        utters = [utter_name(e) for e in bots]
        actions = [e.get("name") for e in events if e["event"] == "action"]
        self.log.append(f"  customer: {text}")
        self.log += [f"  bot [{utter_name(e)}]: {e.get('text')}" for e in bots]
        self.update_register(text)

        expect = step.get("expect") or {}
        if expect.get("language"):
            self.language = expect["language"]
        where = lambda message: self.fail(number, message, utters)  # noqa: E731
        joined = " ".join(replies).lower()
        for wanted in expect.get("contains", []):
            assert str(wanted).lower() in joined, where(f"expected {wanted!r} in the replies")
        if expect.get("contains_any"):
            assert any(str(w).lower() in joined for w in expect["contains_any"]), \
                where(f"expected one of {expect['contains_any']!r} in the replies")
        for unwanted in expect.get("not_contains", []):
            assert str(unwanted).lower() not in joined, where(f"did not expect {unwanted!r} in the replies")
        for wanted in expect.get("utters", []):
            assert any_match(wanted, utters), where(f"expected response {wanted}")
        if expect.get("utters_any"):
            assert any(any_match(w, utters) for w in expect["utters_any"]), \
                where(f"expected one of the responses {expect['utters_any']}")
        for unwanted in expect.get("not_utters", []):
            assert not any_match(unwanted, utters), where(f"did not expect response {unwanted}")
        for wanted in expect.get("actions", []):
            assert wanted in actions, where(f"expected action {wanted} (ran: {actions})")
        for unwanted in expect.get("not_actions", []):
            assert unwanted not in actions, where(f"did not expect action {unwanted}")
        for slot, value in (expect.get("slots") or {}).items():
            actual = tracker["slots"].get(slot)
            if value == "*":
                assert actual, where(f"expected slot {slot} to be set, it is {actual!r}")
            else:
                assert actual == value, where(f"expected slot {slot}={value!r}, it is {actual!r}")
        if expect.get("silent"):
            assert replies == [] and bots == [], where(f"expected no reply, got {replies}")
        elif "silent" in expect and not expect["silent"]:
            assert replies, where("expected a reply")

        # Rule 4, per turn: the conversation's language, and the Dutch form of address.
        texts = [e.get("text") or "" for e in bots if utter_name(e) not in BILINGUAL_RESPONSES]
        texts = [t for t in texts if t.strip()]
        if texts:
            try:
                assert_language(texts, self.language)
            except AssertionError as error:
                raise AssertionError(where(f"language: {error}")) from None
            if self.language == "nl":
                self.check_register(texts, where)

    def update_register(self, text: str) -> None:
        informal, formal = bool(INFORMAL.search(text)), bool(FORMAL.search(text))
        if informal and not formal:
            self.register = "je"
        elif formal and not informal:
            self.register = "u"

    def check_register(self, texts: List[str], where) -> None:
        wrong = FORMAL if self.register == "je" else INFORMAL
        for text in texts:
            found = wrong.search(text)
            assert not found, where(f"register: the customer is addressed as {self.register!r}, "
                                    f"but a reply says {found.group(0)!r}: {text!r}")

    # -- the rules of the whole conversation -------------------------------------------------------
    def check_rules(self, tracker: Dict[str, Any]) -> None:
        slots: Dict[str, Any] = {}
        field_named: Optional[str] = None
        texts: Counter = Counter()
        for event in tracker["events"]:
            kind = event["event"]
            if kind == "session_started":
                slots = {}
            elif kind == "slot":
                slots[event["name"]] = event["value"]
            elif kind == "user":
                intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
                text = event.get("text") or ""
                if intent == "change_contact_details" and CONTACT_FIELD_WORDS.search(text):
                    field_named = text
            elif kind == "bot" and not is_agent_line(event):
                name = utter_name(event)
                if event.get("text"):
                    texts[event["text"]] += 1
                    empty = EMPTY_VALUE.search(event["text"])
                    assert not empty, self.fail(None, f"rule 6: {name} has an empty value {empty.group(0)!r}: {event['text']!r}")
                # Rule 1: identity never asked after it is verified.
                assert not (name in IDENTITY_QUESTIONS and slots.get("customer_id")), \
                    self.fail(None, f"rule 1: {name} after the customer was verified ({slots.get('customer_id')})")
                # Rule 2: no question whose answer is known.
                if name in ANSWERED_BY:
                    slot = ANSWERED_BY[name]
                    assert not slots.get(slot), self.fail(None, f"rule 2: {name} while {slot}={slots.get(slot)!r}")
                if name == "utter_ask_contact_field":
                    assert field_named is None, self.fail(None, f"rule 2: {name} after the customer named it: {field_named!r}")
        # Rule 3: no reply text three times.
        repeated = {text: n for text, n in texts.items() if n >= 3}
        assert not repeated, self.fail(None, f"rule 3: replies repeated three times or more: {repeated}")

    def case_ids(self, tracker: Dict[str, Any]) -> List[str]:
        ids: List[str] = []
        for event in tracker["events"]:
            if event["event"] == "slot" and event["name"] == "handoff_case_id" and event["value"] and event["value"] not in ids:
                ids.append(event["value"])
        return ids

    def check_handoff(self, tracker: Dict[str, Any]) -> None:
        expected = self.spec.get("handoff")
        ids = self.case_ids(tracker)
        if expected is None:
            assert not ids, self.fail(None, f"a case was opened ({ids}, reason {tracker['slots'].get('handoff_reason')!r}) "
                                            "where the customer should have been helped by the bot")
            return
        assert ids, self.fail(None, f"expected a handoff ({expected}), no case was opened "
                                    f"(handoff_pending={tracker['slots'].get('handoff_pending')!r})")
        case = self.fetch_case(ids[-1], tracker)
        packet = case.get("packet") or {}
        identity = case_identity(case)
        if "reason" in expected:
            assert case.get("reason") == expected["reason"], \
                self.fail(None, f"case reason {case.get('reason')!r}, expected {expected['reason']!r}")
        if "identity" in expected:
            assert identity.get("customer_id") == expected["identity"], \
                self.fail(None, f"case identity {identity.get('customer_id')!r}, expected {expected['identity']!r}")
        # Rule 5: the agent's card is complete.
        customer_id = tracker["slots"].get("customer_id")
        if customer_id:
            assert identity.get("customer_id") == customer_id, \
                self.fail(None, f"rule 5: the case has customer {identity.get('customer_id')!r}, the tracker {customer_id!r}")
        first = self.described or self.first_description(tracker)
        if first:
            assert packet.get("problem_description") == first, \
                self.fail(None, f"rule 5: the case's problem_description is {packet.get('problem_description')!r}, "
                                f"the customer first said {first!r}")

    def fetch_case(self, case_id: str, tracker: Dict[str, Any]) -> Dict[str, Any]:
        """The case; waits a little for identity given while waiting to reach it."""
        customer_id = tracker["slots"].get("customer_id")
        deadline = time.monotonic() + 5
        while True:
            response = self.agent.get(f"/api/cases/{case_id}")
            assert response.status_code == 200, self.fail(None, f"case {case_id}: {response.status_code} {response.text}")
            case = response.json()
            if not customer_id or case_identity(case).get("customer_id") == customer_id or time.monotonic() > deadline:
                return case
            time.sleep(0.25)

    @staticmethod
    def first_description(tracker: Dict[str, Any]) -> Optional[str]:
        for event in tracker["events"]:
            if event["event"] == "slot" and event["name"] == "problem_description" and event["value"]:
                return event["value"]
        return None

    def fail(self, number: Optional[int], message: str, utters: Optional[List[Any]] = None) -> str:
        head = f"{self.spec['name']}" + (f", turn {number}" if number else "") + f": {message}"
        if utters is not None:
            head += f"\n  responses this turn: {utters}"
        return head + "\n" + "\n".join(self.log[-40:])


def case_identity(case: Dict[str, Any]) -> Dict[str, Any]:
    """The identity on the agent's card: the case's own (updated later) or the packet's."""
    return case.get("identity") or (case.get("packet") or {}).get("identity") or {}


@pytest.fixture(scope="module")
def conversation_agent(stack):
    """An agent account for reading cases and claiming them (no console socket: not 'available')."""
    password = uuid.uuid4().hex
    stack.add_agent("gerrit", "Gerrit Mulder", password)
    agent = Agent(stack.handoff_url, "gerrit", password)
    yield agent
    agent.close()


@pytest.mark.parametrize("language, spec", load_conversations())
def test_customer_conversation(stack, conversation_agent, language, spec):
    conversation = Conversation(stack, conversation_agent, language, spec)
    try:
        conversation.run()
    finally:
        # HELDER_CONVERSATION_LOG=path keeps every transcript, to read what the bot said.
        path = os.environ.get("HELDER_CONVERSATION_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as log:
                log.write(f"=== {language}-{spec['name']}\n" + "\n".join(conversation.log) + "\n")
