"""runhands' controller: the CLI, configuration, model client and the agent's state machine."""

__version__ = "0.1.0"
