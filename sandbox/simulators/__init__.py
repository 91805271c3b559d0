"""Runnable fakes of TakeCare and Treserva, with fault switches, for the sandbox and tests."""
