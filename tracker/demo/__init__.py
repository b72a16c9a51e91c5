"""Real, tiny training code that `seed_demo` runs so the demo data is evidence, not invention."""
