"""Attack tests: each reproduces an attack from the security review against the real services.

The composed stack of the e2e tier (scripted executors) is shared; modules that need other settings
start their own `Stack` in a module-scoped fixture.
"""

from tests.e2e.conftest import api, data_dir, stack, stack_env  # noqa: F401
