"""Clients of outside platforms used by the app (WeChat)."""
