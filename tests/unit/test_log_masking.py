"""Personal data is masked in log output (contract/log_masking.py)."""

import io
import logging

import pytest

from contract.log_masking import MaskingFilter, install, mask


@pytest.mark.parametrize("text, expected", [
    # Dutch
    ("Mijn e-mail is sanne.devries@example.nl, bel me op 06-12345678",
     "Mijn e-mail is [email], bel me op [phone]"),
    ("mijn nummer is +31 6 12345678 of 0031612345678", "mijn nummer is [phone] of [phone]"),
    ("vast nummer 020 123 4567", "vast nummer [phone]"),
    ("ik woon op 3511 AB in Utrecht", "ik woon op [postcode] in Utrecht"),
    ("postcode 3511ab", "postcode [postcode]"),
    ("postcode: 3511 ab", "postcode: [postcode]"),
    ("maak het over naar NL91 ABNA 0417 1643 00 graag", "maak het over naar [iban] graag"),
    ("rekening NL91ABNA0417164300.", "rekening [iban]."),
    # Belgian: a 4-digit postcode only in context, phones, IBAN
    ("mijn postcode is 2000", "mijn postcode is [postcode]"),
    ("SlotSet(key: postcode, value: 2018)", "SlotSet(key: postcode, value: [postcode])"),
    ("{'postcode': '9000'}", "{'postcode': '[postcode]'}"),
    ("gsm 0470 12 34 56 of +32 470 12 34 56", "gsm [phone] of [phone]"),
    ("IBAN BE68 5390 0754 7034", "IBAN [iban]"),
    # English
    ("my email is Emily.Clarke+shop@example.co.uk", "my email is [email]"),
    ("call me on +44 7700 900123 or 07700 900123", "call me on [phone] or [phone]"),
    ("my postcode is SW1A 1AA", "my postcode is [postcode]"),
    ("pay to GB29 NWBK 6016 1331 9268 19", "pay to [iban]"),
    # Secrets in URLs (an access log line of Meta's webhook handshake, a Rasa auth token)
    ('"GET /webhooks/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=s3cr3t-Tok3n&hub.challenge=8364 HTTP/1.1" 200',
     '"GET /webhooks/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=[secret]&hub.challenge=8364 HTTP/1.1" 200'),
    ("GET /conversations/x/tracker?token=abc.def.ghi", "GET /conversations/x/tracker?token=[secret]"),
    ("https://graph.example/v19.0/me?access_token=EAAB123", "https://graph.example/v19.0/me?access_token=[secret]"),
])
def test_masks_personal_data(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize("text", [
    "customer 48213377 verified",                     # customer number: needed to follow a case
    "order 2024118832 is late",                       # order number
    "since 2019 is the address unchanged",            # a year before a short word
    "we had 2000 visitors",                           # a number without postcode context
    "timestamp 1714557600.123 took 0.042 s",          # timestamps and durations
    "sender e2e-4f3ab12cd34e5f6a7b8c9d0e1f2a3b4c",     # conversation ids (hex)
    "case c_3f9ab12cd34e5f6a7b8c9d0e1f2a3b4c claimed", # case ids
    "Rasa 3.6.21 on 127.0.0.1:5005",                  # versions, addresses, ports
    "2026-03-02 10:00:00,123 INFO",                   # log timestamps
])
def test_leaves_ordinary_log_text_alone(text):
    assert mask(text) == text


def test_a_record_through_a_configured_handler_comes_out_masked():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("tests.masking.child")   # a child logger, as rasa.* and actions.* are
    parent = logging.getLogger("tests.masking")
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    try:
        assert install(handler) == 1 and install(handler) == 0   # idempotent
        logger.info("user said %r", "mail sanne@example.nl of bel 06 1234 5678, postcode 3511 AB")
        try:
            raise ValueError("bad IBAN NL91ABNA0417164300")
        except ValueError:
            logger.exception("failed for %s", "emily@example.co.uk")
    finally:
        parent.removeHandler(handler)
    out = stream.getvalue()
    assert "sanne@example.nl" not in out and "1234 5678" not in out and "3511 AB" not in out
    assert "emily@example.co.uk" not in out and "NL91ABNA0417164300" not in out
    assert "tests.masking.child user said 'mail [email] of bel [phone], postcode [postcode]'" in out
    assert "ValueError: bad IBAN [iban]" in out


def test_action_server_installs_it():
    import importlib

    import actions

    handler = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(handler)
    try:
        importlib.reload(actions)
        assert any(isinstance(f, MaskingFilter) for f in handler.filters)
    finally:
        logging.getLogger().removeHandler(handler)
