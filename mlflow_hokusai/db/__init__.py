"""Hokusai's own tables: their schema, engine and Alembic history."""
