"""Appointment assets: the daily staff digest of unconfirmed appointments."""
