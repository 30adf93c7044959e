"""Herald's schema migrations: one file per change to its own tables, applied in order.

A file is ``NNNN_what_it_does.py`` (the next free four-digit number) with a docstring whose first
line says what the change is, and one function, ``upgrade(s: Session) -> None``, that makes the
change on either engine (``s.engine`` is ``"duckdb"`` or ``"postgres"``). The runner
(:mod:`herald.warehouse.migrate`) applies each pending file in its own transaction and records it in
``herald_ops.schema_migrations``; ``herald db status`` and ``herald db upgrade`` show and apply them.

Rules (docs/operations.md, "Schema migrations"):

- A migration is history: once released, never edit it; write the next one. It never reads
  ``herald.warehouse.schema.TABLES`` (the head schema), only its own frozen SQL.
- Change ``TABLES`` in the same commit, so that the head of the migrations equals it
  (tests/integration/test_migrations.py compares them on both engines). A column added to an
  existing table goes last in ``TABLES`` (PostgreSQL appends it).
- Give existing rows their value in the migration (a backfill), and keep it forward-only.
- :mod:`.ops` holds the steps that differ between the engines (adding a column, changing a key).
"""
