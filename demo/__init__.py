"""Client-side demonstrations run against a running API (`make demo`); not part of the server."""
