"""Message rendering: sandboxed Jinja templates for SMS and MJML email, GSM-7/UCS-2 segment
counting, and signed unsubscribe tokens. Pure Python; no Dagster, no warehouse."""
