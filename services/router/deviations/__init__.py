"""Deviations (avvikelser i samverkan): a record for every failed or late notification,
and its exports for a deviation system."""
