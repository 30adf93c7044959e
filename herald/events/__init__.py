"""Provider events (delivery statuses, bounces, complaints, unsubscribes) from the web service."""
