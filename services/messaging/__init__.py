"""The parts every service shares: the FHIR message envelope, Kafka plumbing, the
transactional outbox, Swedish patient identifiers and the settings base class."""
