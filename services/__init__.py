"""Carebridge: a message broker for care transitions between TakeCare and Treserva."""
