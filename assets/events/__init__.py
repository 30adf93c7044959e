"""Provider events as assets: delivery statuses, bounces, complaints and web unsubscribes
loaded into the warehouse and applied."""
