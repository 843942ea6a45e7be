"""One module owns an application's state; the phase modules call it, not each other."""
