"""Face verification: the adapter interface, its registry and adapters (no Flask, no app imports)."""
