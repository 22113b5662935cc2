"""Shared mechanisms for the gateway services (no tables, no business rules)."""
