"""Attack tests: each reproduces an attack from the security review against the real services.

The composed stack of the e2e tier (scripted executors; fixtures `stack`, `api`, `stack_env`,
`data_dir` from the `tests.support.composed_stack` plugin) is shared; modules that need other settings
start their own `Stack` in a module-scoped fixture.
"""
