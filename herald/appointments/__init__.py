"""Appointments: confirmation states (dbt) and the daily staff digest."""
