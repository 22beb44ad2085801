"""A demo retail database to run the pipeline against: `python -m services.demo_db --url ...`.

A development tool (`make demo-db`, `make run`, the tests), not part of any service.
"""
