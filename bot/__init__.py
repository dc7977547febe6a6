"""Rasa-side code of the assistant: custom NLU components, channels and the event broker.

Importing the package makes Rasa validate action server responses with a compiled validator
(bot/action_validation.py): the Rasa server imports this package for the components, the
channels and the event broker, so the Rasa server always has it.
"""

from bot import action_validation as _action_validation

_action_validation.install()

# Personal data (e-mail, phone, postcode, IBAN) is masked in the log output of the Rasa server:
# Rasa has configured its log handlers before it imports the components, channels or broker.
from bot import log_masking as _log_masking

_log_masking.install()
