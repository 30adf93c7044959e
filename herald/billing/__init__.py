"""Credits and billing: the credit ledger, reservation at claim time, low-credit alerts.

- :mod:`herald.billing.credits` — purchases, balances, the reservation a delivery claim makes
  and the refund of a message that failed.
- :mod:`herald.billing.alerts` — one email to the client when its balance falls below its
  threshold, once per crossing.
"""
