"""Alembic migrations of the relational store; ``Store.migrate()`` runs them, no alembic.ini needed."""
