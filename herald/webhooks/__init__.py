"""Outbound webhooks: client events (marts.client_events) posted, signed with the Standard
Webhooks scheme, to the endpoints each client subscribed in its ``client.yaml``."""
