"""The project's test suite."""
