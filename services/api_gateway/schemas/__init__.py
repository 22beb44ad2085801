"""Pydantic models of the HTTP contract: requests validated with them, responses built from them,
and the OpenAPI document generated from the same classes."""
