"""Accounts: citizens and staff, login, tokens and the guard, assurance levels."""
