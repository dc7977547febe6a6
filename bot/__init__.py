"""Rasa-side code of the assistant: custom NLU components, channels, the event broker, the tracker
store, and the changes to Rasa's behaviour with the server's entry point.

Importing the package, or any module of it, changes nothing in Rasa: the Rasa server is started
with ``python -m bot.server run ...`` (bot/server.py), which installs every change in one place
(bot/rasa_patches.py) after checking the Rasa release.
"""
