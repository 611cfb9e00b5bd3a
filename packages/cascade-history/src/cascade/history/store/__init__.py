"""The database itself: where it is, its SQLAlchemy engine, its tables and their Alembic
migrations, what a reader checks before it reads, and the statements that insert in bulk."""
