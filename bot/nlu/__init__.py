"""Custom NLU components registered with Rasa's default recipe.

Every model the Rasa server loads has them (config.yml), so importing the package is also where
the server gets its answer to an action server that is down or slow (bot/action_fallback.py):
only the Rasa server imports it, never the action server or the handoff service.
"""

from bot import action_fallback as _action_fallback

_action_fallback.install()
