"""`OutputArray` (defined in `multilayer.engine.outputs`, where layers can use it too)."""

from multilayer.engine.outputs import OutputArray

__all__ = ["OutputArray"]
