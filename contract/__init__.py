"""The contract between the assistant (Rasa server and action server) and the handoff service.

Both deployables import this package, and nothing else of each other: the handoff service never
imports ``bot`` or ``actions``. It holds what the two must agree on:

- :mod:`contract.packet`: the context packet a case is opened with, built from a tracker's JSON;
- :mod:`contract.reasons`: why a conversation goes to a person;
- :mod:`contract.slots` and :mod:`contract.channels`: the slot, language and channel names both
  read and write, and the web chat's session-id format;
- :mod:`contract.keys`: every Redis key and stream name of either service;
- :mod:`contract.retention`: how long conversations are kept (``RETENTION_DAYS``);
- :mod:`contract.whatsapp_window`: how long free text can still reach a WhatsApp customer;
- :mod:`contract.dates`: how a date and the honest wait are worded to a customer;
- :mod:`contract.log_masking`: personal data masked in every service's logs.

Standard library only, and importing it changes nothing (tests/unit/test_contract.py checks both).
"""
