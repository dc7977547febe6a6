"""Custom actions of the Helder support assistant (rasa-sdk action server package)."""
