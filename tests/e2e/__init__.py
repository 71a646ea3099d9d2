"""End-to-end tests: the simulator and the three services as real processes."""
