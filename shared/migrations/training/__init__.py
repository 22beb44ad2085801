"""The training-data store's migrations (applied by shared.training_store.ensure_schema)."""
