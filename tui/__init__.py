"""The Textual terminal UI for investigating a fleet."""
