"""Audit: the access log of every view of patient data and every security event (hash-chained,
with signed checkpoints of its head kept outside the database), and payload retention and
keys."""
