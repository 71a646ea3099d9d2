"""A TorBox API client that survives the real API: quirks, rate limits, outages."""
