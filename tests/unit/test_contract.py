"""The contract package (contract/): standard library only, no import side effects, the one thing
the handoff service imports of the assistant; and its names agree with Rasa's configuration."""

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Set, Tuple

import pytest
import yaml

from contract import keys, slots
from contract.packet import packet_from_tracker
from contract.reasons import BOT_REASONS, EscalationReason, bot_reason
from tests.unit.conftest import make_tracker

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_MODULES = sorted(f"contract.{p.stem}" for p in (ROOT / "contract").glob("*.py") if p.stem != "__init__")


def _imports(path: Path) -> Iterator[Tuple[str, int]]:
    """The top-level package of every absolute import in ``path``, with its line."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0], node.lineno


def test_contract_imports_only_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"contract"}
    found = [f"{path.relative_to(ROOT)}:{line} imports {package}"
             for path in sorted((ROOT / "contract").rglob("*.py"))
             for package, line in _imports(path) if package not in allowed]
    assert not found, found


def test_the_handoff_service_imports_nothing_of_bot_or_actions():
    found = [f"{path.relative_to(ROOT)}:{line} imports {package}"
             for path in sorted((ROOT / "handoff").rglob("*.py"))
             for package, line in _imports(path) if package in ("bot", "actions", "scripts", "tests")]
    assert not found, found


def test_importing_the_contract_changes_nothing():
    """No Rasa, web framework or Redis client comes with it, and no logging is set up."""
    probe = (
        "import json, logging, sys\n"
        "loaded = set(sys.modules)\n"
        "before = (list(logging.getLogger().handlers), list(logging.getLogger().filters))\n"
        f"for name in {CONTRACT_MODULES!r}: __import__(name)\n"
        "after = (list(logging.getLogger().handlers), list(logging.getLogger().filters))\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - loaded}\n"
        "third = sorted(m for m in new - set(sys.stdlib_module_names) - {'contract'}\n"
        "               if not m.startswith('_sysconfigdata'))\n"
        "print(json.dumps({'third_party': third, 'logging_changed': before != after}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": ""})
    report = json.loads(result.stdout)
    assert CONTRACT_MODULES and report == {"third_party": [], "logging_changed": False}


def _endpoints() -> dict:
    return yaml.safe_load((ROOT / "endpoints.yml").read_text())


def test_endpoints_use_the_contracts_tracker_prefix_and_stream():
    endpoints = _endpoints()
    assert endpoints["tracker_store"]["key_prefix"] == keys.DEFAULT_TRACKER_KEY_PREFIX
    assert endpoints["lock_store"]["key_prefix"] == keys.DEFAULT_TRACKER_KEY_PREFIX
    assert endpoints["event_broker"]["stream"] == keys.EVENTS_STREAM
    assert keys.tracker_key("abc") == "helder:tracker:abc"


def _declared_slots() -> Set[str]:
    declared: Set[str] = set()
    for path in (ROOT / "domain").glob("*.yml"):
        declared |= set((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("slots") or {})
    return declared


def test_every_contract_slot_is_declared_in_the_domain():
    names = {value for name, value in vars(slots).items() if name.isupper() and isinstance(value, str)}
    names |= set(slots.ENTITY_SLOTS)
    names -= {slots.DEFAULT_LANGUAGE}
    assert names and names <= _declared_slots(), sorted(names - _declared_slots())


def test_escalation_reasons():
    assert "frustration" in BOT_REASONS and EscalationReason.FRUSTRATION == "frustration"
    assert "takeover" not in BOT_REASONS and f"{EscalationReason.TAKEOVER}" == "takeover"
    assert bot_reason("second_miss") == "second_miss"
    assert bot_reason("takeover") == bot_reason(None) == bot_reason("anything") == "request"
    assert bot_reason("nonsense", default="backend_failure") == "backend_failure"


AGENT_LINE = {"event": "bot", "text": "Ik ben Eva, ik kijk even mee.", "timestamp": 3.0,
              "metadata": {"agent_id": "eva", "agent_name": "Eva"}}
SLOTS = {"customer_id": "48213377", "customer_name": "Sanne de Vries",
         "identity_verified_by": "customer_number+postcode",
         "identity_verified_at": "2026-11-23T09:00:00+00:00", "problem_description": "mijn föhn is kapot",
         "problem_intent": "defective_product", "bot_attempts": ["defective_product:out_of_warranty"],
         "product": "föhn", "postcode": "", "order_number": None}


def _action_tracker():
    earlier = [{"event": "user", "text": "mijn föhn is kapot", "timestamp": 1.0, "input_channel": "socketio"},
               {"event": "bot", "text": "Dat is vervelend.", "timestamp": 2.0}, AGENT_LINE,
               {"event": "slot", "name": "product", "value": "föhn"}]
    tracker = make_tracker("hij doet het nog steeds niet", "defective_product", slots=SLOTS, events=earlier,
                           sender_id="a" * 32)
    tracker.events[-1]["input_channel"] = "socketio"
    return tracker


def test_the_packet_has_every_field_an_agent_needs():
    packet = packet_from_tracker("a" * 32, _action_tracker().current_state(), "complexity")
    assert packet == {
        "conversation_id": "a" * 32, "reason": "complexity", "language": "nl", "channel": "socketio",
        "identity": {"customer_id": "48213377", "name": "Sanne de Vries", "verified_by": "customer_number+postcode",
                     "verified_at": "2026-11-23T09:00:00+00:00"},
        "problem_description": "mijn föhn is kapot", "intent": "defective_product",
        "entities": {"product": "föhn"}, "bot_attempts": ["defective_product:out_of_warranty"],
        "transcript": [{"from": "customer", "text": "mijn föhn is kapot", "at": 1.0},
                       {"from": "bot", "text": "Dat is vervelend.", "at": 2.0},
                       {"from": "customer", "text": "hij doet het nog steeds niet", "at": None}],
    }


def test_the_bot_and_the_service_build_the_same_packet():
    """The action server's packet (from rasa-sdk's tracker) is the one the handoff service builds
    from the same conversation's tracker JSON (a takeover, a late request)."""
    from actions.escalation import context_packet

    tracker = _action_tracker()
    as_rasa_serves_it = json.loads(json.dumps(tracker.current_state()))
    assert context_packet(tracker, "request") == packet_from_tracker(tracker.sender_id, as_rasa_serves_it, "request")


@pytest.mark.parametrize("language, expected", [("en", "en"), ("de", "nl"), (None, "nl")])
def test_the_packet_language_is_a_reply_language(language, expected):
    assert packet_from_tracker("c", {"slots": {"language": language}})["language"] == expected


def _reasons_set_in(path: Path) -> Iterator[Tuple[str, int]]:
    """Literal reasons in ``SlotSet("handoff_reason", ...)``, ``SlotSet("handoff_pending", ...)`` and
    ``handoff_reason=...`` (a solver's outcome) in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "handoff_reason" and isinstance(keyword.value, ast.Constant) and keyword.value.value:
                yield keyword.value.value, node.lineno
        if (getattr(node.func, "id", None) == "SlotSet" and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant) and node.args[0].value in (slots.HANDOFF_REASON,
                                                                                        slots.HANDOFF_PENDING)
                and isinstance(node.args[1], ast.Constant) and node.args[1].value):
            yield node.args[1].value, node.lineno


def test_every_reason_the_bot_sets_is_an_escalation_reason():
    found = [(path, reason, line) for folder in ("actions", "bot") for path in sorted((ROOT / folder).rglob("*.py"))
             for reason, line in _reasons_set_in(path)]
    assert len(found) > 10, "the scan finds the bot's reasons"
    unknown = [f"{path.relative_to(ROOT)}:{line} {reason!r}" for path, reason, line in found if reason not in BOT_REASONS]
    assert not unknown, unknown
