"""The model API: `Model` (a graph of layers), `Sequential` (a stack), and saving / loading
models as ``.safetensors`` files."""

from multilayer.models.functional import Model
from multilayer.models.saving import load_model, model_from_json, save_model
from multilayer.models.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model", "model_from_json", "save_model"]
