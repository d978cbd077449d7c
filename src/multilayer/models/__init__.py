"""The model API: `Sequential`, and saving / loading models as ``.safetensors`` files."""

from multilayer.models.saving import load_model, save_model
from multilayer.models.sequential import Sequential

__all__ = ["Sequential", "load_model", "save_model"]
