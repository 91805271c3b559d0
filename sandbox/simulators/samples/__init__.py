"""Sample native documents for the simulators, the demo, the benchmarks and the property
tests: one module per family, each a pure function of a ``random.Random`` and ``now``."""
