"""Event classes found by type name in a table (bot/event_lookup.py) give exactly Rasa's answers."""

from __future__ import annotations

import pytest
import rasa.shared.utils.common
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered

from bot import event_lookup

ORIGINAL = Event.resolve_by_type


def every_type_name():
    return sorted({cls.type_name for cls in rasa.shared.utils.common.all_subclasses(Event)})


@pytest.mark.parametrize("type_name", every_type_name())
def test_every_event_type_resolves_to_rasas_class(type_name):
    assert event_lookup.resolve_by_type(type_name) is ORIGINAL(type_name)


def test_unknown_names_are_answered_as_rasa_answers():
    assert event_lookup.resolve_by_type("topic") is ORIGINAL("topic") is None
    assert event_lookup.resolve_by_type("no_such", default=SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name 'no_such'"):
        event_lookup.resolve_by_type("no_such")


def test_an_event_class_defined_later_is_found():
    class Later(Event):
        type_name = "helder_test_later_event"

        def as_story_string(self):  # pragma: no cover - not used
            return None

        def __eq__(self, other):  # pragma: no cover - not used
            return isinstance(other, Later)

        def __hash__(self):  # pragma: no cover - not used
            return 1

    event_lookup.resolve_by_type("user")  # the table exists before the class above is known
    assert event_lookup.resolve_by_type("helder_test_later_event") is Later


def test_events_round_trip_through_the_table(monkeypatch):
    monkeypatch.setattr(Event, "resolve_by_type", staticmethod(event_lookup.resolve_by_type))
    events = [UserUttered("hallo", {"name": "greet", "confidence": 1.0}), ActionExecuted("action_listen"),
              SlotSet("language", "nl")]
    again = [Event.from_parameters(event.as_dict()) for event in events]
    assert again == events
