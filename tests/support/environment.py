"""The services' environment in tests: which variables are the services' own (cleared of the
caller's values before every test, tests/conftest.py) and the sandbox's choice of environment
that every test starts from."""

from __future__ import annotations

SERVICE_PREFIXES = (
    "ROUTER_",
    "ADAPTER_TAKECARE_",
    "ADAPTER_TRESERVA_",
    "SIM_TRESERVA_",
    "SIM_TAKECARE_",
    "SIM_SUBSCRIBER_",
    "STACK_",
)

# The services' environment is production unless the sandbox is chosen explicitly; tests run
# on the sandbox's settings, and say so here. A test of what production refuses names its
# environment (``environment="production"``, or deletes the variable: see
# tests/security/test_fail_closed.py).
SANDBOX_ENVIRONMENT = {
    f"{prefix}ENVIRONMENT": "sandbox"
    for prefix in ("ROUTER_", "ADAPTER_TAKECARE_", "ADAPTER_TRESERVA_")
}
