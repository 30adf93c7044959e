-- compose's postgres service: Dagster's own database beside the warehouse (same owner).
create database herald_dagster owner herald;
