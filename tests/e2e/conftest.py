"""The e2e tier: the composed stack's fixtures come from the `tests.support.composed_stack` plugin."""

from tests.support.composed_stack import DB_URL, SECRET, _wait_ready

__all__ = ["DB_URL", "SECRET", "_wait_ready"]
