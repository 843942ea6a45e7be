"""Request and response schemas of applications, review and evaluations."""
