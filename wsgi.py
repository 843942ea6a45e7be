"""The WSGI entry point: `gunicorn wsgi:app`."""

import gc

from app import create_app

app = create_app()

# Everything built at start-up (modules, the app, its schemas and caches: about 230,000 objects) lives as long
# as the process, yet each full collection would walk it again; frozen, a gen-2 collection walks only what
# requests left behind. Measured in bench/prefill.py on PostgreSQL: one gen-2 collection of 49–73 ms landed in
# every run (the prefill's 200–250 ms outlier); frozen, none above 5 ms, max 123 ms over 60 runs. Under
# gunicorn --preload it also keeps the forked workers from copying those pages when the collector touches them.
gc.freeze()
