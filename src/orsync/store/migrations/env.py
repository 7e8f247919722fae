"""Alembic environment: orsync runs migrations itself, on the connection it opened.

The revisions never import orsync's tables or views: each one freezes the SQL it runs, so it
never changes when ``orsync/store/tables.py`` or ``views.py`` do. Only ``alembic revision
--autogenerate`` during development compares the schema with the tables.
"""

from alembic import context

config = context.config

connection = config.attributes.get("connection")
if connection is None:
    # Only `alembic revision --autogenerate` during development gets here.
    from sqlalchemy import create_engine

    from orsync.store.tables import metadata

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
