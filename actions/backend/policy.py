"""The service and goodwill policy an operator edits: ``actions/backend/policy.yml``.

One YAML file holds every amount and rule the backend applies on its own (goodwill ladders, the
bot's limit, how long an unpaid order is kept, the sign-up link, the erasure deadline). It is
read on first use and again when the file changes, and checked as a whole: a file that breaks a
rule raises :class:`PolicyError` with the offending key, never a half-applied policy.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

ENV_POLICY_FILE = "KLANTCONTACT_POLICY_FILE"
DEFAULT_POLICY_FILE = Path(__file__).resolve().with_name("policy.yml")
ORDER_GESTURES = ("delivery_costs", "voucher")


class PolicyError(ValueError):
    """The policy file is missing, unreadable or breaks a rule (the message names the key)."""


@dataclass(frozen=True)
class OrderStep:
    """One step of a late/lost-order ladder: the delivery costs refunded, or a voucher."""

    type: str  # "delivery_costs" or "voucher"
    cents: int
    valid_days: int = 0  # vouchers only


@dataclass(frozen=True)
class ExtraOffer:
    """What a customer who regularly buys this category is offered with a replacement."""

    nl: str
    en: str


@dataclass(frozen=True)
class ServicePolicy:
    """Everything in the policy file, checked."""

    bot_limit_cents: int
    outage_min_hours: int
    outage_bill_day: int
    outage_cents_per_hour: Tuple[int, ...]  # per step
    late_order_steps: Tuple[OrderStep, ...]
    lost_order_steps: Tuple[OrderStep, ...]
    defect_lookback_days: int
    defect_min_purchases: int
    defect_extra_max_cents: Tuple[int, ...]  # per step
    defect_extras: Mapping[str, ExtraOffer]  # purchase category → offer
    return_days: int
    delivery_days_ahead: int
    failed_payment_hold_days: int
    refund_payout_days: int
    signup_url: str
    signup_token_hours: int
    erasure_days: int

    def steps(self, reason: str) -> int:
        """How many steps the ladder for ``reason`` has."""
        return {
            "outage": len(self.outage_cents_per_hour), "late_order": len(self.late_order_steps),
            "lost_order": len(self.lost_order_steps), "defect": len(self.defect_extra_max_cents),
        }[reason]


def _get(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise PolicyError(f"policy: {path} is missing")
        node = node[key]
    return node


def _count(data: Mapping[str, Any], path: str, minimum: int = 0, value: Any = None) -> int:
    value = _get(data, path) if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PolicyError(f"policy: {path} must be a whole number ≥ {minimum}, got {value!r}")
    return value


def _list(data: Mapping[str, Any], path: str) -> List[Any]:
    value = _get(data, path)
    if not isinstance(value, list) or not value:
        raise PolicyError(f"policy: {path} must be a non-empty list")
    return value


def _order_steps(data: Mapping[str, Any], path: str) -> Tuple[OrderStep, ...]:
    steps = []
    for index, raw in enumerate(_list(data, path)):
        where = f"{path}[{index}]"
        if not isinstance(raw, Mapping) or raw.get("type") not in ORDER_GESTURES:
            raise PolicyError(f"policy: {where}.type must be one of {', '.join(ORDER_GESTURES)}")
        valid_days = _count(raw, "valid_days", 1, raw.get("valid_days")) if raw["type"] == "voucher" else 0
        steps.append(OrderStep(raw["type"], _count(raw, "cents", 1, raw.get("cents")), valid_days))
    return tuple(steps)


def _ladder(data: Mapping[str, Any], path: str, key: str) -> Tuple[int, ...]:
    values = []
    for index, raw in enumerate(_list(data, path)):
        if not isinstance(raw, Mapping):
            raise PolicyError(f"policy: {path}[{index}] must be a mapping with {key}")
        values.append(_count(raw, key, 0, raw.get(key)))
    if values != sorted(values):
        raise PolicyError(f"policy: {path} must go up, step by step")
    return tuple(values)


def parse_policy(data: Any) -> ServicePolicy:
    """A :class:`ServicePolicy` from the parsed YAML; PolicyError naming the first bad key."""
    if not isinstance(data, Mapping):
        raise PolicyError("policy: the file must be a mapping")
    if data.get("version") != 1:
        raise PolicyError(f"policy: version must be 1, got {data.get('version')!r}")
    extras: Dict[str, ExtraOffer] = {}
    raw_extras = _get(data, "goodwill.defect.extras")
    if not isinstance(raw_extras, Mapping) or not raw_extras:
        raise PolicyError("policy: goodwill.defect.extras must map purchase categories to offers")
    for category, offer in raw_extras.items():
        if not isinstance(offer, Mapping) or not all(isinstance(offer.get(lang), str) and offer[lang].strip()
                                                    for lang in ("nl", "en")):
            raise PolicyError(f"policy: goodwill.defect.extras.{category} needs an nl and an en text")
        extras[str(category).lower()] = ExtraOffer(nl=offer["nl"].strip(), en=offer["en"].strip())
    signup_url = _get(data, "account.signup_url")
    if not isinstance(signup_url, str) or not signup_url.startswith(("http://", "https://")):
        raise PolicyError("policy: account.signup_url must be an http(s) URL")
    bill_day = _count(data, "goodwill.outage.bill_day", 1)
    if bill_day > 28:
        raise PolicyError("policy: goodwill.outage.bill_day must be 1-28 (every month has it)")
    return ServicePolicy(
        bot_limit_cents=_count(data, "bot_limit_cents"),
        outage_min_hours=_count(data, "goodwill.outage.min_hours"),
        outage_bill_day=bill_day,
        outage_cents_per_hour=_ladder(data, "goodwill.outage.steps", "credit_cents_per_hour"),
        late_order_steps=_order_steps(data, "goodwill.late_order.steps"),
        lost_order_steps=_order_steps(data, "goodwill.lost_order.steps"),
        defect_lookback_days=_count(data, "goodwill.defect.lookback_days", 1),
        defect_min_purchases=_count(data, "goodwill.defect.min_purchases", 1),
        defect_extra_max_cents=_ladder(data, "goodwill.defect.steps", "extra_max_cents"),
        defect_extras=extras,
        return_days=_count(data, "orders.return_days", 1),
        delivery_days_ahead=_count(data, "orders.delivery_days_ahead", 1),
        failed_payment_hold_days=_count(data, "payments.failed_payment_hold_days", 1),
        refund_payout_days=_count(data, "payments.refund_payout_days", 0),
        signup_url=signup_url,
        signup_token_hours=_count(data, "account.signup_token_hours", 1),
        erasure_days=_count(data, "privacy.erasure_days", 1),
    )


class PolicyFile:
    """The policy file, parsed on first use and again whenever its modification time changes."""

    def __init__(self, path: Optional[Path] = None) -> None:
        """``path`` defaults to ``$KLANTCONTACT_POLICY_FILE``, else ``actions/backend/policy.yml``."""
        self.path = Path(path or os.environ.get(ENV_POLICY_FILE) or DEFAULT_POLICY_FILE)
        self._lock = threading.Lock()
        self._loaded: Optional[Tuple[int, ServicePolicy]] = None

    def get(self) -> ServicePolicy:
        """The current policy; PolicyError when the file is missing or invalid."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            raise PolicyError(f"policy file {self.path} cannot be read: {exc}") from exc
        with self._lock:
            if self._loaded is None or self._loaded[0] != mtime:
                try:
                    data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
                except (OSError, yaml.YAMLError) as exc:
                    raise PolicyError(f"policy file {self.path} cannot be read: {exc}") from exc
                self._loaded = (mtime, parse_policy(data))
            return self._loaded[1]
