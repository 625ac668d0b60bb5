"""The mission contract: models, loading, expect checks, paths. Imports nothing above it."""
