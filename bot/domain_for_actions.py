"""The domain goes to the action server without its responses.

Rasa 3.6 sends the whole domain with every call to a form validator (``validate_<form>``, which
Rasa always sends it to; the other actions get none, ``enable_selective_domain`` in
endpoints.yml). This domain's JSON is about 141 kB, 134 kB of it the responses in two languages;
the action server never reads them (Rasa renders every response itself; rasa-sdk's form
validation reads the domain's ``slots`` and ``forms``, and actions/ reads nothing of it). Writing
and reading those 141 kB cost about 1.5 ms on each side per validator call (bot/fast_json.py
halves Rasa's part), on the turns that are already the slowest: the ones that ask for the
customer's number, postcode or contact details.

:func:`install` (the Rasa server installs it at start, bot/rasa_patches.py) wraps
``RemoteAction._action_call_format``: the call Rasa builds, with the domain (when there is one)
replaced by the same dict without ``responses`` (made once per domain and kept).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

from rasa.core.actions.action import RemoteAction

#: What :func:`install` replaces in Rasa.
REPLACES = ("rasa.core.actions.action:RemoteAction._action_call_format",)

#: What the action server is not sent.
LEFT_OUT = ("responses",)

_rasa_call_format: Optional[Callable[..., Dict[str, Any]]] = None
_kept: Optional[Tuple[Dict[str, Any], Dict[str, Any]]] = None  # (Rasa's domain dict, ours)


def for_actions(domain: Dict[str, Any]) -> Dict[str, Any]:
    """``domain`` without :data:`LEFT_OUT` (the same dict object for the same domain)."""
    global _kept
    if _kept is None or _kept[0] is not domain:
        _kept = (domain, {key: value for key, value in domain.items() if key not in LEFT_OUT})
    return _kept[1]


def action_call_format(self: RemoteAction, tracker: Any, domain: Any) -> Dict[str, Any]:
    """Rasa's ``RemoteAction._action_call_format`` with the domain for actions."""
    assert _rasa_call_format is not None, "install() first"
    call = _rasa_call_format(self, tracker, domain)
    if isinstance(call.get("domain"), dict):
        call["domain"] = for_actions(call["domain"])
    return call


def install() -> None:
    """Makes Rasa send the domain without responses."""
    global _rasa_call_format
    if _rasa_call_format is None:
        _rasa_call_format = RemoteAction._action_call_format
    RemoteAction._action_call_format = action_call_format
