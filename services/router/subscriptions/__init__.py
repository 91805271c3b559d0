"""Subscriptions: who receives which messages, kept in SQL, and the webhook dispatcher."""
