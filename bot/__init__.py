"""Rasa-side code of the assistant: custom NLU components, channels and the event broker.

Importing the package makes Rasa validate action server responses with a compiled validator
(bot/action_validation.py): the Rasa server imports this package for the components, the
channels and the event broker, so the Rasa server always has it.
"""

from bot import action_validation as _action_validation

_action_validation.install()
