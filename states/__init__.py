"""What each running state of the agent does; one module per state.

Each module has `run(ctx) -> Next`: do the state's work, then say which trigger to fire.
`finished` and `errored` are final and do nothing.
"""
