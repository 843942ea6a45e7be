"""Shared government data: connectors, the HTTP client they use, prefill. A plain library: no Flask here."""
