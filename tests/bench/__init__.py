"""Tests that the benchmark harness runs and measures what it says (never how fast)."""
