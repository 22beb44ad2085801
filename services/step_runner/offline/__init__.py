"""The offline generator: question/SQL pairs, descriptions and repairs built from the catalog without an LLM."""
