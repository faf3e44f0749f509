"""`python -m workflow.cli`."""

from workflow.cli import run

run()
