"""The catalogue: matters (事项), their materials, departments, bundles (一件事) as definitions."""
