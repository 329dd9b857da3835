"""The read side's storage: the read-model store port and its adapters (S3, SQLite, PostgreSQL)."""
