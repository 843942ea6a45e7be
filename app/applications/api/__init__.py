"""The applications' views: citizens', agents' and reviewers'."""
