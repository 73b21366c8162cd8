"""SQLAlchemy Core storage for SQLite and PostgreSQL."""
