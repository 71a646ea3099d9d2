"""The scheduler service: time, rate limits, API keys in memory and every call to TorBox."""
