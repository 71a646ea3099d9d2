"""Tests of the simulated TorBox API."""
