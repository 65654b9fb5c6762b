"""The agent: its machine and transition table, the state derived from the log, its tools,
prompts, history, condensation, loop detection, budgets and outcome."""
