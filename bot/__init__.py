"""Rasa-side code of the assistant: custom NLU components and, later, channels and brokers."""
