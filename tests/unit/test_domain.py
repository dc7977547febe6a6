"""The domain speaks both languages, without stock phrases, and every action exists."""

import inspect
import re

import pytest
from rasa_sdk import Action
from rasa_sdk.forms import FormValidationAction

import importlib
import pkgutil

import actions
from actions.common import CASE_INTENTS

BANNED = [r"wat vervelend", r"fijne dag", r"excuses voor het ongemak", r"sorry for the inconvenience",
          r"have a nice day", r"uw mening", r"rate (our|this)", r"beoordeel"]


def test_every_response_has_a_dutch_and_an_english_variant(domain):
    for name, variants in domain["responses"].items():
        languages = {
            c["value"] for v in variants for c in v.get("condition", []) if c.get("name") == "language"
        }
        assert languages == {"en", "nl"}, f"{name} has language variants {languages}"
        assert all(v.get("condition") for v in variants), f"{name} has an unconditional variant"


def _register(variant):
    return next((c["value"] for c in variant["condition"] if c["name"] == "register"), None)


def test_dutch_uses_u_unless_the_customer_says_je(domain):
    for name, variants in domain["responses"].items():
        dutch = [v for v in variants if any(c.get("value") == "nl" for c in v["condition"])]
        for variant in dutch:
            if _register(variant) == "je":
                assert not re.search(r"\b(u|uw)\b", variant["text"]), name
            else:
                assert not re.search(r"\b(je|jij|jou|jouw)\b", variant["text"], re.I), name
        groups = {}
        for variant in dutch:
            other = tuple(sorted((c["name"], str(c["value"])) for c in variant["condition"] if c["name"] != "register"))
            groups.setdefault(other, []).append(_register(variant))
        for other, registers in groups.items():
            # Either one Dutch text for everyone, or exactly one per register: never a random mix.
            assert registers in ([None], ["u", "je"]), f"{name} {other}: {registers}"


def test_no_stock_phrases_or_survey_spam(domain):
    for name, variants in domain["responses"].items():
        for variant in variants:
            for phrase in BANNED:
                assert not re.search(phrase, variant["text"], re.I), f"{name}: {variant['text']}"


def test_every_case_has_a_confirmation_and_a_best_guess_question(domain):
    for case in CASE_INTENTS:
        assert f"utter_understood_{case}" in domain["responses"]
        assert f"utter_did_you_mean_{case}" in domain["responses"]


def test_the_first_messages_disclose_the_bot_and_the_way_to_a_person(domain):
    for name in ("utter_greet", "utter_disclosure", "utter_iamabot"):
        texts = {c["value"]: v["text"] for v in domain["responses"][name] for c in v["condition"]}
        assert "assistent" in texts["nl"] and "medewerker" in texts["nl"]
        assert "assistant" in texts["en"] and ("agent" in texts["en"])


def test_every_custom_action_in_the_domain_is_implemented(domain):
    implemented = set()
    modules = [importlib.import_module(f"actions.{m.name}") for m in pkgutil.iter_modules(actions.__path__)]
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Action) and cls not in (Action, FormValidationAction) and cls.__module__ == module.__name__:
                implemented.add(cls().name())
    custom = {a for a in domain["actions"] if a.startswith(("action_", "validate_"))}
    assert custom <= implemented, custom - implemented


def test_every_response_an_action_can_name_exists(domain):
    from actions.handoff import HANDOFF_REASONS
    from actions.solvers import CONTACT_FIELDS, ORDER_STATES, REFUND_REFUSALS
    names = [f"utter_order_{s}" for s in ORDER_STATES] + [f"utter_refund_{r}" for r in REFUND_REFUSALS]
    names += [f"utter_contact_updated_{f}" for f in CONTACT_FIELDS] + [f"utter_handoff_{r}" for r in HANDOFF_REASONS]
    missing = [name for name in names if name not in domain["responses"]]
    assert not missing


def test_responses_rendered_before_their_slots_are_set_do_not_depend_on_them(domain):
    # Rasa renders an action's messages before applying its events: a variation conditioned on
    # a slot the same action sets would silently render nothing.
    set_by_solvers = {"contact_field", "outage_notified", "next_step", "problem_intent"}
    for name, variants in domain["responses"].items():
        if name.startswith(("utter_contact_updated", "utter_order_", "utter_refund_", "utter_replacement")):
            for variant in variants:
                assert not {c["name"] for c in variant["condition"]} & set_by_solvers, name
