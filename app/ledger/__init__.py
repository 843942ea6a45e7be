"""The append-only, hash-chained log that the face, data-access and auditor-access logs write through."""
