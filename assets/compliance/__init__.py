"""Compliance assets: inbound replies applied (opt-out, opt-in, HELP, C/R) and the retention purge."""
