"""Goose-exact down migrations for a Hatchet PostgreSQL database.

This package knows goose (file names, the SQL annotation parser, the version table, down-to and
the advisory lock) and PostgreSQL. It knows nothing about GitHub or releases: callers hand it
migration files as bytes (see ``migrator.sources``).
"""
