"""Alembic migrations. HEAD names the newest revision: bump it with every new one
(tests check it against the scripts), so opening a database that is up to date costs
one query instead of loading Alembic."""

HEAD = "0002"
