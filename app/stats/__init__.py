"""Statistics: a read model over the domains (the one package that reads several)."""
