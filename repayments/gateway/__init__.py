"""The bank/payment channel: one interface, an HTTP client, and a sandbox bank."""
