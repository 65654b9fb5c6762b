"""Running one run: set-up, start, resume, drive, the sandbox for a config, replay, gc."""
