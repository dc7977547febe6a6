"""A WhatsApp customer as Meta delivers them: webhook payloads, signed, POSTed to Rasa.

For end-to-end tests and benchmarks, together with :mod:`scripts.fake_graph_api` (which
receives what the assistant sends back). The payloads have the shape of the WhatsApp Cloud
API's ``messages`` webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE_NUMBER = "31850000000"


def sign(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` header value Meta sends for ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(messages: Sequence[Dict[str, Any]] = (), statuses: Sequence[Dict[str, Any]] = (),
             contacts: Optional[List[Dict[str, Any]]] = None,
             phone_number_id: str = PHONE_NUMBER_ID) -> Dict[str, Any]:
    """One webhook delivery (``object: whatsapp_business_account``)."""
    value: Dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_PHONE_NUMBER, "phone_number_id": phone_number_id},
    }
    if contacts is not None:
        value["contacts"] = contacts
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}


def message(wa_id: str, kind: str = "text", text: str = "", timestamp: Optional[float] = None,
            message_id: Optional[str] = None, **content: Any) -> Dict[str, Any]:
    """One inbound message. ``kind`` "text" uses ``text``; other kinds take their content object
    as a keyword argument, e.g. ``message(wa_id, "image", image={"id": "...", "mime_type": "image/jpeg"})``."""
    body: Dict[str, Any] = {
        "from": wa_id,
        "id": message_id or f"wamid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time() if timestamp is None else timestamp)),
        "type": kind,
    }
    if kind == "text":
        body["text"] = {"body": text}
    body.update(content)
    return body


def button_reply(wa_id: str, reply_id: str, title: str, **kwargs: Any) -> Dict[str, Any]:
    """The customer tapped a reply button."""
    return message(wa_id, "interactive", interactive={"type": "button_reply",
                                                      "button_reply": {"id": reply_id, "title": title}}, **kwargs)


def list_reply(wa_id: str, reply_id: str, title: str, **kwargs: Any) -> Dict[str, Any]:
    """The customer picked a row of a list message."""
    return message(wa_id, "interactive", interactive={"type": "list_reply",
                                                      "list_reply": {"id": reply_id, "title": title}}, **kwargs)


def status(wa_id: str, state: str = "delivered") -> Dict[str, Any]:
    """A status callback (sent/delivered/read/failed) for a message the business sent."""
    return {"id": f"wamid.{uuid.uuid4().hex}", "status": state, "timestamp": str(int(time.time())),
            "recipient_id": wa_id}


class WhatsAppCustomer:
    """One customer writing to the assistant's WhatsApp webhook (as Meta would deliver it)."""

    def __init__(self, rasa_url: str, app_secret: str, wa_id: str, name: str = "Klant",
                 phone_number_id: str = PHONE_NUMBER_ID) -> None:
        self.webhook = f"{rasa_url}/webhooks/whatsapp/webhook"
        self.app_secret = app_secret
        self.wa_id = wa_id
        self.name = name
        self.phone_number_id = phone_number_id
        self._sequence = itertools.count(1)

    def payload(self, text: str, message_id: Optional[str] = None) -> Dict[str, Any]:
        """A delivery carrying one text message from this customer."""
        return delivery([message(self.wa_id, text=text, message_id=message_id)],
                        contacts=[{"profile": {"name": self.name}, "wa_id": self.wa_id}],
                        phone_number_id=self.phone_number_id)

    def post(self, payload: Dict[str, Any], signed: bool = True) -> Any:
        """POSTs a delivery the way Meta does; returns the ``requests`` response."""
        import requests

        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["X-Hub-Signature-256"] = sign(self.app_secret, body)
        return requests.post(self.webhook, data=body, headers=headers, timeout=30)

    def say(self, text: str) -> Dict[str, Any]:
        """Sends one text message; returns the delivery (to redeliver it, as Meta does on retries)."""
        payload = self.payload(text, message_id=f"wamid.{uuid.uuid4().hex}{next(self._sequence)}")
        response = self.post(payload)
        assert response.status_code == 200, response.text
        return payload
