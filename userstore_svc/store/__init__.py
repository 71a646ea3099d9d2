"""SQLite persistence: migrations, the connection pool, the registry and each user's database."""
