"""Fakes that more than one test tree uses, each in one module.

They import the standard library and PyJWT only, which both test environments have (``.venv`` with
Rasa, ``.venv-handoff`` with the handoff service), so any tree may use any of them:

- :mod:`tests.fakes.rasa`: Rasa's HTTP API as far as the handoff service calls it (tests/handoff,
  tests/browser);
- :mod:`tests.fakes.packets`: the context packet the bot opens a case with (tests/handoff,
  tests/browser).

WhatsApp's Graph API is faked by ``scripts/fake_graph_api.py`` (tests/channels, tests/e2e): the
benchmarks and local runs use it too, so it stays with the scripts.
"""
