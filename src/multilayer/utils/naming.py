"""Helpful errors for unknown names ("did you mean ...?").

The function lives in `multilayer.engine.registry` (the engine imports nothing from
`multilayer.utils`); it is re-exported here for the CLI and the recipes.
"""

from multilayer.engine.registry import unknown_name_error

__all__ = ["unknown_name_error"]
