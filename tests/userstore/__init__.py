"""Tests of the userstore: the pure pipeline, rules, storage and the service."""
