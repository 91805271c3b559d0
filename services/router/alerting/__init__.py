"""Alerting: incidents (one per kind, destination and family), their notices and the
durable notification queue with its channels, silent sources and the unit directory."""
