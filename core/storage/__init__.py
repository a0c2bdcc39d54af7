"""The database: connections (SQLite or PostgreSQL), the tables, versioned migrations and the
sweep that removes rows which no longer mean anything."""
