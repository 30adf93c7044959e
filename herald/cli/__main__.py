"""``python -m herald.cli``: the commands that need no Dagster."""

from herald.cli import main

main()
