"""A demo retail database to run the pipeline against: `python -m services.step_runner.demo --url ...`."""
