"""The rule policy stops matching a conversation's states once no remaining rule reaches that far back.

Rasa 3.6's ``RulePolicy._get_possible_keys`` finds the rules that fit the conversation by walking
its states from the newest to the oldest and keeping, at each step, the rules applicable there
(``_is_rule_applicable``). A rule is always applicable at a step further back than its own length
(its first check), so once the walk is past the longest remaining rule nothing can change; Rasa
walks on to the start of the conversation anyway, checking every remaining rule at every older
state. With this assistant's rules (about a hundred, at most a few states long) and a conversation
of 20 or 40 states, most of that work is the walk past the end of every rule; it runs at least
once for every action the policy predicts.

:func:`install` (the Rasa server installs it at start, bot/rasa_patches.py) replaces the method
with the same walk that stops as soon as the step is past the longest remaining rule: the same
set of rules, for less work (tests compare it with Rasa's on every rule against real states).
"""

from __future__ import annotations

from typing import Any, Dict, List, Set, Text

from rasa.core.policies.rule_policy import RulePolicy

#: What :func:`install` replaces in Rasa.
REPLACES = ("rasa.core.policies.rule_policy:RulePolicy._get_possible_keys",)


def _longest(policy: RulePolicy, keys: Set[Text]) -> int:
    """The number of states of the longest of these rules (Rasa caches each key's states)."""
    return max((len(policy._rule_key_to_state(key)) for key in keys), default=0)


def get_possible_keys(self: RulePolicy, lookup: Dict[Text, Text], states: List[Dict[Text, Any]]) -> Set[Text]:
    """Rasa's ``_get_possible_keys``, ending the walk once it is past the longest remaining rule."""
    possible_keys = set(lookup.keys())
    longest = _longest(self, possible_keys)
    for i, state in enumerate(reversed(states)):
        if i >= longest:
            break  # every remaining rule is applicable from here back (Rasa's first check)
        possible_keys = {key for key in possible_keys if self._is_rule_applicable(key, i, state)}
        longest = _longest(self, possible_keys)
    return possible_keys


def install() -> None:
    """Makes the rule policy stop its walk once it is past the longest remaining rule."""
    RulePolicy._get_possible_keys = get_possible_keys
