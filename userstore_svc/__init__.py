"""The userstore service: every SQLite file, the pure pipeline, rules and the action log."""
