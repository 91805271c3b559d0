"""Audit: the access log of every view of patient data, and payload retention and keys."""
