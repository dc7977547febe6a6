"""Whole conversations through the REST channel of the real, running assistant."""

import requests

from tests.e2e.conftest import assert_language

IDENTIFICATION_QUESTIONS = ("utter_ask_identifier", "utter_ask_postcode")


def count(actions, names):
    return sum(1 for a in actions if a in names)


def test_dutch_conversation_identifies_once_and_solves_two_cases(customer):
    sanne = customer({"locale": "nl-NL"})
    greeting = sanne.say("hallo")
    assert_language(greeting, "nl")
    assert "digitale assistent" in greeting[0] and "medewerker" in greeting[0]

    replies = sanne.say("ik heb vorige week een föhn besteld en hij is er nog steeds niet")
    assert_language(replies, "nl")
    assert any("bestelling" in r for r in replies)  # the one-sentence confirmation
    assert "klantnummer" in replies[-1]

    replies = sanne.say("48213377")
    assert "postcode" in replies[-1]
    replies = sanne.say("3511 ab")
    assert_language(replies, "nl")
    joined = " ".join(replies)
    assert "Sanne de Vries" in joined and "2024118832" in joined and "PostNL" in joined

    replies = sanne.say("en ik kan ook niet meer inloggen op mijn account")
    assert_language(replies, "nl")
    assert "klantnummer" not in " ".join(replies) and "postcode" not in " ".join(replies)
    assert any("nieuw wachtwoord" in r for r in replies)

    slots = sanne.slots()
    assert slots["customer_id"] == "48213377"
    assert slots["identity_verified_by"] == "customer_number+postcode"
    assert slots["problem_description"] == "ik heb vorige week een föhn besteld en hij is er nog steeds niet"
    actions = sanne.bot_actions()
    assert count(actions, ("utter_ask_identifier",)) == 1 and count(actions, ("utter_ask_postcode",)) == 1


def test_english_conversation_with_email_and_both_details_at_once(customer):
    emily = customer({"locale": "en-GB"})
    replies = emily.say("hi, where is my order? it should have been here by now")
    assert_language(replies, "en")
    assert "automated assistant" in replies[0]  # disclosure before anything else
    assert "customer number" in replies[-1]
    replies = emily.say("emily.clarke@example.co.uk and my postcode is SW1A 1AA")
    assert_language(replies, "en")
    joined = " ".join(replies)
    assert "Emily Clarke" in joined and "2024121190" in joined
    replies = emily.say("what are your opening hours on saturday")
    assert_language(replies, "en")
    assert "Saturday" in " ".join(replies)
    assert count(emily.bot_actions(), IDENTIFICATION_QUESTIONS) == 1


def test_a_person_is_honoured_at_once_even_inside_identification(customer):
    for language, problem, ask in (("nl", "mijn wasmachine doet het niet meer", "medewerker"),
                                   ("en", "my washing machine stopped working", "agent")):
        person = customer({"locale": language})
        replies = person.say(problem)
        assert replies and replies[-1]  # asks for the customer number
        replies = person.say(ask)
        assert_language(replies, language)
        tracker = person.tracker()
        assert tracker["latest_action_name"] in ("action_handoff", "action_listen")
        assert tracker["slots"]["handoff_reason"] == "request"
        assert tracker["active_loop"] in ({}, None) or not tracker["active_loop"].get("name")
        # The bot owns nothing any more: one acknowledgement with the wait, then it stays silent.
        ack = person.say("hallo? is daar iemand?" if language == "nl" else "hello? is anyone there?")
        assert len(ack) == 1
        assert_language(ack, language)
        assert person.bot_actions()[-1] in ("utter_waiting_ack_queued", "utter_waiting_ack_no_agents")
        assert person.say("hallo??") == []


def test_language_is_sticky_and_follows_a_clear_switch(customer):
    person = customer()
    assert_language(person.say("goedemorgen, hoe laat zijn jullie open?"), "nl")
    assert_language(person.say("ok"), "nl")
    assert_language(person.say("sorry, can you answer in English please? when are you open on saturday"), "en")
    assert_language(person.say("ja"), "en")
    assert person.slots()["language"] == "en"


def test_restarting_rasa_keeps_the_conversation(customer, stack):
    pieter = customer({"locale": "nl-BE"})
    pieter.say("waar blijft mijn pakske nu")
    pieter.say("51937204")
    replies = pieter.say("2000")
    assert "Pieter Janssens" in " ".join(replies)

    stack.restart_rasa()

    slots = pieter.slots()
    assert slots["customer_id"] == "51937204" and slots["language"] == "nl"
    replies = pieter.say("ik kan ook niet inloggen")
    assert "klantnummer" not in " ".join(replies)
    assert_language(replies, "nl")


def test_identity_carries_over_to_a_new_session(customer):
    ahmed = customer({"locale": "nl-NL"})
    ahmed.say("ik kan niet meer inloggen, account geblokkeerd")
    ahmed.say("ahmed.elamrani@example.nl")
    ahmed.say("1055 KL")
    ahmed.say("/session_start")
    slots = ahmed.slots()
    assert slots["customer_id"] == "72055139" and slots["problem_description"] is None
    replies = ahmed.say("waar is mijn laptop bestelling")
    assert "klantnummer" not in " ".join(replies)


BAD_INPUTS = {
    "empty": "",
    "whitespace": "   ",
    "emoji only": "👍👍",
    "emoji sequences only": "👨‍👩‍👧‍👦👍🏽🇳🇱❤️‍🔥",
    "control characters": "\x00\x07\x1b[31m\x7f\u200b\u202e\r\n\x1f",
    "10 kB": "mijn internet doet het niet " * 370,
    "unknown language": "Bonjour, je voudrais savoir où est ma commande s'il vous plaît",
}


def test_bad_input_gets_a_sensible_reply_in_the_customers_language(customer, stack):
    for language in ("nl", "en"):
        for kind, text in BAD_INPUTS.items():
            person = customer({"locale": language})
            replies = person.say(text)
            assert replies and all(r.strip() for r in replies), f"{kind} ({language}): {replies}"
            if kind != "10 kB":
                assert person.slots()["language"] == language, kind
    # Broken JSON is refused with a clear client error, not a crash.
    response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", data="{not json", timeout=30,
                             headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500


HUNDRED_KB = "mijn internet doet het niet meer sinds gisteren, de modem knippert rood. " * 1400


def test_a_100_kb_message_gets_an_answer_and_the_conversation_goes_on(customer):
    assert len(HUNDRED_KB.encode()) >= 100_000
    person = customer({"locale": "nl"})
    replies = person.say(HUNDRED_KB)
    assert replies and all(r.strip() for r in replies)
    assert person.slots()["language"] == "nl"
    # The conversation goes on, up to a person: the case opens at the handoff service even though
    # the problem the customer described is 100 kB long.
    replies = person.say("medewerker")
    assert_language(replies, "nl")
    actions = person.bot_actions()
    assert "utter_handoff_request" in actions and "utter_handoff_unavailable" not in actions, actions


def test_control_characters_in_a_sentence_are_understood(customer):
    person = customer({"locale": "en"})
    replies = person.say("my\x00 parcel\x07 has not\x1b[0m arrived\x7f\u200b yet\r\n")
    assert_language(replies, "en")
    assert any("customer number" in r.lower() for r in replies), replies


def test_broken_utf8_is_a_client_error_and_the_next_message_works(customer, stack):
    person = customer({"locale": "nl"})
    url = f"{stack.rasa_url}/webhooks/rest/webhook"
    for body in (b'{"sender": "' + person.sender.encode() + b'", "message": "hallo \xff\xfe \xc3\x28 kapot"}',
                 b"\xff\xfe\x00\x01 not even json \x80"):
        response = requests.post(url, data=body, timeout=30, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
    replies = person.say("hallo, mijn föhn is kapot")
    assert_language(replies, "nl")
    assert any("klantnummer" in r for r in replies), replies


def test_a_lone_surrogate_over_rest_is_no_server_error_and_the_next_message_works(customer, stack):
    # Valid JSON ("\\ud83d" is allowed by the grammar) but not valid Unicode text.
    person = customer({"locale": "nl"})
    body = ('{"sender": "' + person.sender + '", "message": "mijn pakket \\ud83d is niet aangekomen"}').encode()
    response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", data=body, timeout=60,
                             headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text[:300]
    replies = person.say("hallo, mijn föhn is kapot")
    assert replies and all(r.strip() for r in replies)


def test_the_http_api_needs_a_token(stack):
    import jwt

    url = f"{stack.rasa_url}/conversations/anyone/tracker"
    assert requests.get(url, timeout=30).status_code == 401
    forged = jwt.encode({"user": {"username": "x", "role": "admin"}}, "not-the-secret", algorithm="HS256")
    assert requests.get(url, headers={"Authorization": f"Bearer {forged}"}, timeout=30).status_code == 401
    # A customer's own token (role user) opens only their own conversation.
    own = jwt.encode({"user": {"username": "someone-else", "role": "user"}}, stack.jwt_secret, algorithm="HS256")
    assert requests.get(url, headers={"Authorization": f"Bearer {own}"}, timeout=30).status_code == 403
    # The token is never taken from the URL, where logs would keep it.
    admin = stack.auth_headers()["Authorization"].removeprefix("Bearer ")
    assert requests.get(url, params={"token": admin}, timeout=30).status_code == 401


def test_dutch_follows_the_customer_who_says_je(customer):
    person = customer({"locale": "nl-NL"})
    replies = person.say("hoi, kun je me vertellen waar mijn bestelling blijft?")
    assert any("je klantnummer" in r for r in replies), replies
    replies = person.say("48213377")
    assert "je adres" in replies[-1]
