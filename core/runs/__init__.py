"""Runs: creating and dispatching them, their state transitions and the events those cause,
idempotent triggers, long-polling, and how a run looks to clients."""
