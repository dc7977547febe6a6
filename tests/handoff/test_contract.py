"""The handoff service and the contract package agree: the reasons it reports on and the packet it
accepts are the contract's (contract/reasons.py, contract/packet.py)."""

from contract.packet import packet_from_tracker
from contract.reasons import EscalationReason
from handoff.insights import REASONS
from handoff.models import CaseCreate


def test_insights_name_every_escalation_reason():
    assert set(REASONS) == {reason.value for reason in EscalationReason}


def test_a_packet_built_from_a_tracker_opens_a_case():
    tracker = {
        "slots": {"language": "en", "customer_id": "60418825", "problem_description": "my kettle broke",
                  "bot_attempts": ["defective_product:out_of_warranty"], "product": "kettle"},
        "latest_message": {"intent": {"name": "defective_product"}},
        "latest_input_channel": "whatsapp",
        "events": [{"event": "user", "text": "my kettle broke", "timestamp": 1.0},
                   {"event": "bot", "text": "Thanks, Eva here.", "timestamp": 2.0, "metadata": {"agent_id": "eva"}}],
    }
    case = CaseCreate.model_validate(packet_from_tracker("447700900123", tracker, EscalationReason.FRUSTRATION))
    assert (case.reason, case.language, case.channel, case.intent) == ("frustration", "en", "whatsapp",
                                                                       "defective_product")
    assert case.identity.customer_id == "60418825" and case.entities == {"product": "kettle"}
    assert [line.text for line in case.transcript] == ["my kettle broke"]
