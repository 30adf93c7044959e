"""Staff-alert assets: herald_ops/staff_alerts (failed or held messages, low delivery rate,
provider outages per client) and its asset check."""
