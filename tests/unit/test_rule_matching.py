"""The rule policy's shortened walk (bot/rule_matching.py) finds exactly the rules Rasa's finds."""

import json
import random

import pytest
from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import SHOULD_NOT_BE_SET

from bot import rasa_patches, rule_matching

RASA_GET_POSSIBLE_KEYS = RulePolicy._get_possible_keys  # before the patches are installed below

INTENTS = ("greet", "order_status", "inform", "affirm", "deny", "thanks")
ACTIONS = ("action_listen", "action_take_problem", "identification_form", "action_solve_problem", "utter_greet")
SLOTS = ("next_step", "customer_id", "requested_slot")
LOOPS = ("identification_form", "contact_details_form")


@pytest.fixture(scope="module", autouse=True)
def patched_rasa():
    rasa_patches.install()


def random_state(rng, for_rule):
    state = {}
    if rng.random() < 0.9:
        state["prev_action"] = {"action_name": rng.choice(ACTIONS)}
    if rng.random() < 0.6:
        state["user"] = {"intent": rng.choice(INTENTS)}
    slots = {}
    for slot in SLOTS:
        if rng.random() < 0.3:
            value = SHOULD_NOT_BE_SET if for_rule and rng.random() < 0.3 else rng.choice([(1.0,), (0.0,), "x"])
            slots[slot] = list(value) if isinstance(value, tuple) and for_rule else value
    if slots:
        state["slots"] = slots
    if rng.random() < 0.3:
        state["active_loop"] = {"name": SHOULD_NOT_BE_SET if for_rule and rng.random() < 0.5 else rng.choice(LOOPS)}
    return state


def policy_with_rules(rng, rules):
    policy = object.__new__(RulePolicy)  # only the lookup is read by the matching
    keys = {json.dumps([random_state(rng, True) for _ in range(rng.randint(1, 5))], sort_keys=True): "action"
            for _ in range(rules)}
    policy.lookup = {"rules": keys}
    return policy, keys


@pytest.mark.parametrize("seed", range(12))
def test_the_same_rules_as_rasas_walk(seed):
    rng = random.Random(seed)
    policy, lookup = policy_with_rules(rng, rules=120)
    for _ in range(40):
        conversation = [random_state(rng, False) for _ in range(rng.randint(0, 30))]
        # Rules matched by design too: a conversation that ends with a rule's own states.
        rule = json.loads(rng.choice(list(lookup)))
        conversation += [{k: ({kk: (tuple(vv) if isinstance(vv, list) else vv) for kk, vv in v.items()})
                          for k, v in state.items()} for state in rule]
        expected = RASA_GET_POSSIBLE_KEYS(policy, lookup, conversation)
        assert rule_matching.get_possible_keys(policy, lookup, conversation) == expected


def test_a_conversation_shorter_than_the_rules_and_no_rules_at_all():
    rng = random.Random(7)
    policy, lookup = policy_with_rules(rng, rules=30)
    for states in ([], [random_state(rng, False)]):
        assert rule_matching.get_possible_keys(policy, lookup, states) == RASA_GET_POSSIBLE_KEYS(policy, lookup, states)
    assert rule_matching.get_possible_keys(policy, {}, [random_state(rng, False)]) == set()


def test_installed_by_the_servers_patches():
    assert RulePolicy._get_possible_keys is rule_matching.get_possible_keys
    assert RASA_GET_POSSIBLE_KEYS is not rule_matching.get_possible_keys  # the comparison is with Rasa's own
