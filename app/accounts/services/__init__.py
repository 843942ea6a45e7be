"""The accounts' services: WeChat and staff login, tokens, staff accounts."""
