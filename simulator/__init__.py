"""A simulated TorBox API: living torrents, quirks, rate limits and fault injection."""
