"""Persistence: typed models, engine and sessions, the blob store, and migrations."""
