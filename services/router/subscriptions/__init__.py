"""Subscriptions: who receives which messages, kept in SQL, the webhook dispatcher, and where
a webhook may go (``endpoints``, ``guard``)."""
