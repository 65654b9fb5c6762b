"""The `runhands` commands: parsing, and presenting saved runs (list, inspect)."""

from controller.cli.commands import main

__all__ = ["main"]
