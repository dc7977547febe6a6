"""bot/slot_copy.py: a slot's copy is what copy.copy made of it before, for every slot of the domain."""

import copy
import gc

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.slots import Slot
from rasa.shared.core.trackers import DialogueStateTracker

from bot import rasa_patches, slot_copy

DOMAIN = Domain.load("domain")


@pytest.fixture(scope="module", autouse=True)
def patched_rasa():
    rasa_patches.install()


def test_installed_by_the_servers_patches():
    assert Slot.__copy__ is slot_copy.copy_slot


@pytest.mark.parametrize("slot", DOMAIN.slots, ids=lambda s: s.name)
def test_a_copy_is_what_copy_copy_made_without_the_patch(slot, monkeypatch):
    slot.value = {"order_number": "2024118832"} if slot.type_name == "any" else slot.value
    ours = copy.copy(slot)
    monkeypatch.delattr(Slot, "__copy__")
    theirs = copy.copy(slot)
    assert type(ours) is type(theirs) is type(slot)
    assert ours.__dict__ == theirs.__dict__
    assert ours is not slot and ours.__dict__ is not slot.__dict__
    ours.value = "changed"  # a copy of its own: the tracker's slots are not the domain's
    assert slot.value != "changed"


def test_a_trackers_slots_are_copies_of_the_domains():
    tracker = DialogueStateTracker.from_events("c1", [], slots=DOMAIN.slots)
    assert set(tracker.slots) == {slot.name for slot in DOMAIN.slots}
    for slot in DOMAIN.slots:
        assert tracker.slots[slot.name] is not slot


def test_a_slot_class_that_copies_itself_is_refused(monkeypatch):
    class Special(Slot):
        type_name = "special"

        def __getstate__(self):
            return {}

    try:
        assert any(name.endswith("Special.__getstate__") for name in slot_copy.copies_its_own_way())
        with pytest.raises(RuntimeError, match="copy themselves"):
            slot_copy.install()
    finally:
        del Special
        gc.collect()  # out of Slot.__subclasses__() again
