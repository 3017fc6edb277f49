"""Alembic environment for Hokusai's own history.

Runs only programmatically (see mlflow_hokusai.db.migrate), on a connection the
caller already holds the migration lock on. The version table has its own name
so it never collides with MLflow's ``alembic_version``.
"""

from alembic import context

from mlflow_hokusai.db.migrate import VERSION_TABLE
from mlflow_hokusai.db.schema import metadata

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
