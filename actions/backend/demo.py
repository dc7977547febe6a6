"""An in-memory demo backend with a handful of customers in NL, BE and the UK.

Good enough to hold real conversations; the SQL backend replaces it (see the backend issue).
Dates are relative to today so the demo orders stay "late" or "on their way".
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Dict, List, Optional

from actions.backend.base import BackendUnavailable, Customer, Order, PasswordReset
from actions.identifiers import Identifier, normalise_phone, parse_postcode

logger = logging.getLogger(__name__)

_CUSTOMERS = [
    Customer("48213377", "Sanne de Vries", "sanne.devries@example.nl", "+31612345678", "3511 AB", "NL"),
    Customer("51937204", "Pieter Janssens", "pieter.janssens@example.be", "+32470123456", "2000", "BE"),
    Customer("60418825", "Emily Clarke", "emily.clarke@example.co.uk", "+447700900123", "SW1A 1AA", "GB"),
    Customer("72055139", "Ahmed El Amrani", "ahmed.elamrani@example.nl", "+31687654321", "1055 KL", "NL", account_locked=True),
]


def _orders(today: dt.date) -> List[Order]:
    day = dt.timedelta(days=1)
    return [
        Order("2024118832", "48213377", ["Philips föhn"], "shipped", today - 2 * day, today + day, None, "PostNL", "3SHLDR0012345"),
        Order("2024097710", "48213377", ["HP printer"], "delivered", today - 30 * day, today - 27 * day, today - 27 * day, "DHL", "JVGL0099887766"),
        Order("2024120451", "51937204", ["Sony koptelefoon"], "late", today - 9 * day, today - 3 * day, None, "bpost", "323299887766554"),
        Order("2024121190", "60418825", ["Dyson vacuum cleaner"], "processing", today, today + 2 * day, None, "DPD", None),
        Order("2024110032", "72055139", ["Lenovo laptop"], "lost", today - 14 * day, today - 10 * day, None, "PostNL", "3SHLDR0077777"),
    ]


class DemoBackend:
    """Implements :class:`actions.backend.base.CustomerBackend` over fixed demo data."""

    def __init__(self) -> None:
        self._customers: Dict[str, Customer] = {c.id: c for c in _CUSTOMERS}
        self._lock = threading.Lock()
        self.password_resets: List[PasswordReset] = []

    def _find(self, identifier: Identifier) -> Optional[Customer]:
        for customer in self._customers.values():
            if identifier.kind == "customer_number" and customer.id == identifier.value:
                return customer
            if identifier.kind == "email" and customer.email == identifier.value.lower():
                return customer
            if identifier.kind == "phone" and customer.phone == normalise_phone(identifier.value):
                return customer
        return None

    def verify(self, identifier: Identifier, postcode: str) -> Optional[Customer]:
        customer = self._find(identifier)
        if customer is None or parse_postcode(postcode) != customer.postcode:
            return None
        return customer

    def get_customer(self, customer_id: str) -> Optional[Customer]:
        return self._customers.get(customer_id)

    def find_by_phone(self, phone: str) -> Optional[Customer]:
        return self._find(Identifier("phone", phone))

    def orders(self, customer_id: str) -> List[Order]:
        found = [o for o in _orders(dt.date.today()) if o.customer_id == customer_id]
        return sorted(found, key=lambda o: o.ordered_on, reverse=True)

    def reset_password(self, customer_id: str) -> PasswordReset:
        with self._lock:
            customer = self._customers.get(customer_id)
            if customer is None:
                raise BackendUnavailable(f"unknown customer {customer_id}")
            unlocked = customer.account_locked
            if unlocked:
                self._customers[customer_id] = Customer(**{**customer.__dict__, "account_locked": False})
            reset = PasswordReset(email=customer.email, unlocked=unlocked)
            self.password_resets.append(reset)
        logger.info("password reset link sent for customer %s (unlocked=%s)", customer_id, unlocked)
        return reset
