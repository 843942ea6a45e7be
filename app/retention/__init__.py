"""Retention (PIPL art. 19: personal data kept no longer than its purpose needs): what expires, and its removal.

What expires, each after a period of its own (RETENTION_*_DAYS, docs/configuration.md):
- uploads of decided applications (approved, rejected, delivered, withdrawn): the files are deleted (a file
  shared by identical uploads only when no other record still refers to it); the material keeps its hash,
  size and type, so the record still says what was provided, and the timeline says when the files went;
- stale drafts (not changed for the period): withdrawn by the system, with their prefilled and typed values
  and uploads erased; the row and its consent receipts stay, as evidence of the data access they allowed;
- face sessions, once expired for the period: deleted (the provider's session data goes with them; the
  face-verification log keeps its own pseudonymous records);
- the encrypted snapshots of decided applications (prefill, form, submission values, delivery address):
  erased after the period; the application keeps its status, timeline, materials' hashes and decision.

`tasks.purge` does one pass (the periodic task retention.purge, every RETENTION_RUN_SECONDS; by hand `flask
jobs run retention.purge`) through each domain's own functions (app/applications/services/retention.py,
app/face/services/retention.py) and returns the counts; the log line says the counts only, never what was
deleted.
"""
