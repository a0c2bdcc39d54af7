"""The database: connections (SQLite or PostgreSQL), the tables and versioned migrations.
Storage imports no feature package (tests/test_layering.py)."""
