"""The face services: sessions and rate limits, the verification log, real-name claims and proof."""
