"""Human handoff service: cases, queue, agents and the live console, over Redis and Rasa's HTTP API.

Runs in its own environment (``.venv-handoff``, Python 3.11+); see ``handoff/API.md`` for the
contract and ``python -m handoff`` to start it.
"""

__version__ = "1.0.0"
