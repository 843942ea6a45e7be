"""The connectors' services: the registry, the shared-data runtime, the data-access log."""
