"""Custom input/output channels."""
