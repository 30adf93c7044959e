"""Campaign runs: record occurrences, render the message plan into the outbox, preview."""
