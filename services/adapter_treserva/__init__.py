"""adapter_treserva: FHIR delivery commands in, Treserva's native API out; delivery outcomes
and Treserva's receipts (kvittens) back to the router."""
