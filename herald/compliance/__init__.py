"""Compliance rules as pure functions: inbound keyword classification, the PHI guard, and
opt-out/help/confirmation wording. No Dagster, no warehouse (docs/compliance.md has the rules)."""
