"""`Sequential`: a stack of layers, the linear special case of `multilayer.Model`.

It builds the same graph a functional model would (each layer called on the previous one's
output), as soon as the input shape is known, so training, evaluation, prediction, saving
and the summary are those of `Model` (`multilayer.models.trainer`). Batches are gathered
into reused buffers and every layer writes into its own reused buffers, so the training loop
allocates almost nothing.
"""

from __future__ import annotations

from multilayer.engine.layers import InputLayer, Layer
from multilayer.engine.layers.base import _default_name
from multilayer.engine.layers.symbolic import KerasTensor
from multilayer.models.functional import Model, deserialize_layer, serialize_layer
from multilayer.models.graph import Graph
from multilayer.models.trainer import INFERENCE_BATCH_SIZE

__all__ = ["INFERENCE_BATCH_SIZE", "Sequential"]


class Sequential(Model):
    """A linear stack of layers (any layer, including a model).

    Args:
        layers: the layers, first to last (or add them later with `add`); the first may be
            ``Input(shape=...)``.
        name: the model's name.
        dtype: ``"float32"`` (default) or ``"float64"``.
        seed: seed of the model's own random generator (weights, shuffling, dropout); drawn
            from the global generator (`multilayer.utils.set_random_seed`) when omitted.
    """

    config_name = "Sequential"
    _builds_own_graph = True

    def __init__(
        self,
        layers: list[Layer] | None = None,
        name: str | None = None,
        dtype=None,
        seed: int | None = None,
    ):
        super().__init__(name=name or _default_name("Sequential"), dtype=dtype, seed=seed)
        for layer in layers or []:
            self.add(layer)

    # -- structure ------------------------------------------------------------------------
    def add(self, layer: Layer | KerasTensor) -> None:
        """Append a layer (or the tensor of ``Input(shape=...)`` as the first element)."""
        if isinstance(layer, KerasTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if self.built:
            raise RuntimeError("cannot add layers to a model that is already built")
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(
                f"a layer named {layer.name!r} is already in the model; layer names must be unique"
            )
        if isinstance(layer, InputLayer) and self.layers:
            raise ValueError("Input(...) can only be the first layer of a Sequential model")
        self.layers.append(layer)

    def _set_graph(self, graph: Graph) -> None:
        self._graph = graph  # ``layers`` stays the list as given

    @property
    def input_shape(self):
        if self._graph is not None:
            return self._graph.inputs[0].sample_shape
        return self.layers[0].input_shape if self.layers else None

    @input_shape.setter
    def input_shape(self, value) -> None:
        pass

    def _output_count(self) -> int:
        return 1

    @property
    def output_names(self) -> list[str]:
        return [self.layers[-1].name] if self.layers else ["output"]

    def input_shapes(self):
        shape = self.input_shape
        return None if shape is None else [shape]

    def _make_graph(self, input_shape=None) -> None:
        """Call every layer on the previous one's output, from ``input_shape`` (or the
        declared one): the graph of the stack. Allocates nothing."""
        if self._graph is not None:
            return
        if not self.layers:
            raise ValueError("the model has no layers: add some before building or training it")
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError(
                "the model's input shape is unknown: give the first layer input_shape=..., start "
                "with Input(shape=...), or call fit / predict with data"
            )
        first, rest = self.layers[0], self.layers
        if isinstance(first, InputLayer):
            tensor, rest = first.output, self.layers[1:]
        else:
            tensor = InputLayer(shape=shape, name=f"{self.name}_input").output
        inputs = tensor
        for layer in rest:
            tensor = layer(tensor)
        self._set_graph(Graph([inputs], [tensor], self.name))

    def _ensure_built(self, shapes: list[tuple[int, ...]]) -> None:
        if not self.built:  # a declared input shape wins: the data is checked against it
            self.build(self.input_shape or shapes[0])

    def _build_if_possible(self) -> None:
        """Build now if the input shape is known (Keras builds as soon as it can)."""
        if not self.built and self.layers and self.input_shape is not None:
            self.build()

    # -- description ----------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self._model_dtype().name,
            "layers": [serialize_layer(layer) for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        if not isinstance(config, dict):
            raise ValueError("the model configuration must be a JSON object")
        unexpected = set(config) - {"name", "dtype", "layers"}
        if unexpected:
            raise ValueError(f"unexpected keys in the model configuration: {sorted(unexpected)}")
        layers = config.get("layers", [])
        if not isinstance(layers, list):
            raise ValueError("'layers' must be a list of layer configurations")
        return cls(
            [deserialize_layer(layer) for layer in layers],
            name=config.get("name"),
            dtype=config.get("dtype"),
        )
