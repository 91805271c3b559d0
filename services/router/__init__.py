"""The router: delivery log, routing, retries, confirmation deadlines and alerts."""
