"""dpctl: the command line client of the Data Pipeline gateway (HTTP API under /api/v0/data_pipeline)."""
