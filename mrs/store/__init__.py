"""
Persistence behind L{IStore}: SQLite by default, PostgreSQL when configured,
and an in-memory store for tests.
"""
