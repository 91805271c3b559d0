"""adapter_takecare: TakeCare's native events in, FHIR R4 messages out (and, later, deliveries
to TakeCare)."""
