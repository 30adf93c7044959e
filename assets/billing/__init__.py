"""Billing assets: low-credit alerts (herald_ops/credit_alerts) and their job."""
