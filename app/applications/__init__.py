"""Applications: drafts, prefill, submission, review, bundles, agents, evaluations."""
