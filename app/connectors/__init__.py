"""Shared-data connectors: the registry bureaus manage, consent, the runtime, the data-access log."""
