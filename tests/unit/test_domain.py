"""The domain speaks both languages, without stock phrases, and every action exists."""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from rasa.shared.utils.io import read_yaml_file
from rasa_sdk import Action
from rasa_sdk.forms import FormValidationAction

import actions
from actions.common import CASE_INTENTS

BANNED = [r"wat vervelend", r"fijne dag", r"excuses voor het ongemak", r"sorry for the inconvenience",
          r"have a nice day", r"uw mening", r"rate (our|this)", r"beoordeel"]

ROOT = Path(__file__).resolve().parents[2]


def test_every_response_has_a_dutch_and_an_english_variant(domain):
    for name, variants in domain["responses"].items():
        languages = {
            c["value"] for v in variants for c in v.get("condition", []) if c.get("name") == "language"
        }
        assert languages == {"en", "nl"}, f"{name} has language variants {languages}"
        assert all(v.get("condition") for v in variants), f"{name} has an unconditional variant"


# Dutch forms of address, as whole words ("uur", "huur", "jeugd" and "jullie" are not).
FORMAL = re.compile(r"\b(u|uw)\b", re.IGNORECASE)
INFORMAL = re.compile(r"\b(je|jij|jou|jouw)\b", re.IGNORECASE)
DOMAIN_FILES = sorted((ROOT / "domain").glob("*.yml"))


def _conditions(variant):
    return {c["name"]: str(c["value"]) for c in variant.get("condition") or []}


def register_problems(name, variants):
    """What is wrong with the form of address of one response's Dutch variants (empty: nothing).

    Every Dutch text comes twice, for each combination of its other conditions: once with
    ``register: u`` (u/uw, never je/jij/jou/jouw) and once with ``register: je`` (never u/uw),
    so one turn never mixes the two.
    """
    problems = []
    registers = {}  # the other conditions -> the registers of the Dutch variants having them
    for variant in variants:
        conditions = _conditions(variant)
        if conditions.get("language") != "nl":
            continue
        register = conditions.pop("register", None)
        registers.setdefault(tuple(sorted(conditions.items())), []).append(register)
        text = variant.get("text") or ""
        if register == "je" and FORMAL.search(text):
            problems.append(f"{name}: the je variant says u/uw: {text!r}")
        if register == "u" and INFORMAL.search(text):
            problems.append(f"{name}: the u variant says je/jij/jou/jouw: {text!r}")
    for other, found in registers.items():
        if sorted(found, key=str) != ["je", "u"]:
            problems.append(f"{name} {dict(other)}: Dutch variants with register {found}, not one u and one je")
    return problems


def test_the_register_check_itself():
    def nl(register, text):
        return {"condition": [{"type": "slot", "name": "language", "value": "nl"}]
                + ([{"type": "slot", "name": "register", "value": register}] if register else []), "text": text}

    assert not register_problems("ok", [nl("u", "Wilt u uw uur kiezen?"), nl("je", "Wil je jouw uur kiezen?")])
    assert register_problems("no_register", [nl(None, "Ik help graag.")])
    assert register_problems("only_u", [nl("u", "Kunt u dat herhalen?")])
    assert register_problems("twice_u", [nl("u", "Dank u."), nl("u", "Dank u."), nl("je", "Dank je.")])
    assert register_problems("capital_u", [nl("u", "Dank u."), nl("je", "U kunt hier verder.")])
    assert register_problems("jouw_in_u", [nl("u", "Dank u voor jouw vraag."), nl("je", "Dank je.")])


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda path: path.name)
def test_dutch_uses_u_unless_the_customer_says_je(path):
    # Every file, domain/conversation.yml included: each is read on its own, so a failure names it.
    responses = (read_yaml_file(path) or {}).get("responses") or {}
    problems = [problem for name, variants in responses.items() for problem in register_problems(name, variants)]
    assert not problems, "\n".join(problems)


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
        for variant in domain["responses"][name]:  # Dutch: both the u and the je variant
            words = {"nl": ("assistent", "medewerker"), "en": ("assistant", "agent")}[_conditions(variant)["language"]]
            assert all(word in variant["text"] for word in words), f"{name}: {variant['text']}"


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
    from actions.contact_details import CONTACT_FIELDS
    from actions.solvers import ORDER_STATES, REFUND_REFUSALS
    from contract.reasons import BOT_REASONS
    names = [f"utter_order_{s}" for s in ORDER_STATES] + [f"utter_refund_{r}" for r in REFUND_REFUSALS]
    names += [f"utter_contact_updated_{f}" for f in CONTACT_FIELDS] + [f"utter_handoff_{r}" for r in BOT_REASONS]
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


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=[p.name for p in DOMAIN_FILES])
def test_every_domain_file_loads(path):
    # Domain.load on the directory only warns about a file it cannot read and leaves it out.
    from rasa.shared.core.domain import Domain

    assert Domain.from_file(str(path)).as_dict()
