"""The notification outbox and its sender."""
