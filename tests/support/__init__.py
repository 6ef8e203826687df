"""Helpers that start real processes (vector store owner, Celery worker) for tests."""
