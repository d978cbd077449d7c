"""The model API: `Model` (a graph of layers), `Sequential` (a stack), and saving / loading
models as ``.safetensors`` files."""

from multilayer.models.functional import Model
from multilayer.models.saving import load_model, save_model
from multilayer.models.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model", "save_model"]
