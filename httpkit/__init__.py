"""The neutral HTTP kit: the one place outbound HTTP sessions are built (timeouts, pools, retries, no cookies).

Flask-free and free of the domain, so `app/`, `shared_data/` and `identity/` all use it without depending on
each other (import-linter checks it: setup.cfg, `make lint`).
"""
