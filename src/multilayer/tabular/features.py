"""`FeatureSpace`: the preprocessing layers of a table's columns, from one streaming pass.

Keras' idiom (``keras.utils.FeatureSpace``), on multilayer's layers::

    space = FeatureSpace({"age": "float_robust", "city": "string_categorical"})
    space.adapt(table_or_frame_or_batches)        # one pass, bounded memory
    inputs = space.get_inputs()                   # {column: Input(shape=(1,))}
    x = space.get_encoded_features()              # one vector per row
    model = Model(inputs, Dense(1)(x))

or ``FeatureSpace.from_table(table, exclude=["target"])`` to choose each column's encoding
from its kind: numeric and true/false columns get RealMLP's robust scaling with smooth clipping
(`RobustScaling`), plus a missing-value indicator when ``adapt`` saw a missing value;
categorical (text) columns get a `StringLookup` one-hot encoding when they have few distinct
values (``one_hot_max``) and an `Embedding` otherwise. Unseen categories (and missing ones)
go to the out-of-vocabulary index; a NaN in a robust-scaled column becomes its median.

Every statistic is computed in one pass over the batches given to ``adapt`` (an iterable of
tables, DataFrames or dicts of arrays, such as :func:`multilayer.data.tables.iter_batches`)
with memory bounded by ``sample_size`` values per numeric column (a uniform reservoir sample
for the quantiles; count, minimum, maximum, mean and variance are exact) and by
``max_distinct`` counted values per categorical column (beyond it, the rarest are dropped).
A whole table, DataFrame or dict is one batch. The statistics end up in the layers' configs,
so a saved model carries them and ``predict`` applies exactly what training learned.
"""

from __future__ import annotations

import builtins
import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from multilayer.data import tables
from multilayer.engine.layers import (
    Concatenate,
    Discretization,
    Embedding,
    Flatten,
    Hashing,
    Input,
    InputLayer,
    IntegerLookup,
    KerasTensor,
    Normalization,
    RobustScaling,
    StringLookup,
)
from multilayer.engine.layers.robust import DEFAULT_CLIP, as_float_column

#: Values kept per numeric column for its quantiles (a reservoir sample beyond that).
SAMPLE_SIZE = 100_000
#: Distinct values counted per categorical column before the rarest are dropped.
MAX_DISTINCT = 100_000
#: Categorical columns with at most this many categories are one-hot encoded ("auto").
ONE_HOT_MAX = 16
#: Distinct values tracked per numeric column (for ``float_robust(one_hot_values=...)``).
DISTINCT_MAX = 64
#: Most columns that get a one-hot of their value (``float_robust(one_hot_values=...)``).
ONE_HOT_VALUES_COLUMNS = 8
#: Largest vocabulary kept for a categorical column (the most frequent values).
MAX_TOKENS = 10_000

FEATURE_TYPES = (
    "float",
    "float_normalized",
    "float_robust",
    "float_discretized",
    "string_categorical",
    "integer_categorical",
    "string_hashed",
    "integer_hashed",
)
_NUMERIC = ("float", "float_normalized", "float_robust", "float_discretized")
_CATEGORICAL = ("string_categorical", "integer_categorical")


@dataclass
class Feature:
    """How one column is encoded: ``kind`` (one of `FEATURE_TYPES`) and its options."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_TYPES:
            raise ValueError(
                f"FeatureSpace: unknown feature type {self.kind!r}; expected one of "
                f"{list(FEATURE_TYPES)}"
            )


class _NumericStats:
    """Exact count/missing/min/max/mean/variance and a reservoir sample, batch by batch."""

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.rng = rng
        self.count = 0
        self.missing = 0
        self.low = math.inf
        self.high = -math.inf
        self.mean = 0.0
        self.m2 = 0.0
        self.sample = np.empty(0)
        #: the distinct values while there are at most `DISTINCT_MAX` (then None)
        self.distinct: np.ndarray | None = np.empty(0)

    def update(self, values: np.ndarray) -> None:
        missing = np.isnan(values)
        self.missing += int(missing.sum())
        present = values[~missing]
        m = present.size
        if not m:
            return
        if not np.all(np.isfinite(present)):
            raise tables.TableError("a numeric column holds an infinite value")
        if self.distinct is not None:  # until there are too many (then never again)
            distinct = np.union1d(self.distinct, present)
            self.distinct = distinct if distinct.size <= DISTINCT_MAX else None
        self.low = min(self.low, float(present.min()))
        self.high = max(self.high, float(present.max()))
        mean = float(present.mean())
        m2 = float(np.square(present - mean).sum())
        n = self.count
        delta = mean - self.mean
        self.mean += delta * m / (n + m)
        self.m2 += m2 + delta * delta * n * m / (n + m)
        # reservoir sampling (Algorithm R), value by value in order
        room = max(self.capacity - n, 0)
        self.sample = np.concatenate([self.sample, present[:room]])
        rest = present[room:]
        if rest.size:
            seen = n + room + np.arange(rest.size)  # 0-based position of each value
            slots = self.rng.integers(0, seen + 1)
            keep = slots < self.capacity
            self.sample[slots[keep]] = rest[keep]  # in order: a later value wins a slot
        self.count = n + m

    @property
    def variance(self) -> float:
        return self.m2 / self.count if self.count else 0.0

    def quantiles(self, qs: list[float]) -> list[float]:
        return [float(v) for v in np.quantile(self.sample, qs)]


class _CategoryCounts:
    """Counts of each distinct value (capped at ``limit``: beyond it the rarest are dropped)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[Any, int] = {}
        self.missing = 0
        self.count = 0
        self.pruned = False

    def update(self, values: list[Any]) -> None:
        present = [v for v in values if v is not None]
        self.missing += len(values) - len(present)
        self.count += len(present)
        if not present:
            return
        unique, counts = np.unique(np.asarray(present, dtype=object), return_counts=True)
        for value, count in zip(unique.tolist(), counts.tolist(), strict=True):
            self.counts[value] = self.counts.get(value, 0) + count
        if len(self.counts) > 2 * self.limit:
            self.counts = dict(_most_frequent(self.counts, self.limit))
            self.pruned = True

    def vocabulary(self, max_tokens: int) -> list[Any]:
        return [value for value, _ in _most_frequent(self.counts, max_tokens)]


def _most_frequent(counts: dict[Any, int], n: int) -> list[tuple[Any, int]]:
    # by count, most frequent first; ties by value, so the order never depends on batching
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]


class FeatureSpace:
    """Preprocessing for a table's columns (see the module docstring).

    Args:
        features: ``{column: feature type or Feature}`` in the order the encodings are
            concatenated. Types: ``float`` (as is), ``float_normalized`` (mean 0, variance
            1), ``float_robust`` (RealMLP's robust scaling and smooth clipping, missing
            values allowed), ``float_discretized`` (quantile bins, one-hot),
            ``string_categorical`` and ``integer_categorical`` (a vocabulary; one-hot or an
            embedding), ``string_hashed`` and ``integer_hashed`` (hash buckets, one-hot).
        output_mode: ``"concat"`` (one vector) or ``"dict"`` (one encoding per column).
        one_hot_max: categorical columns with more categories get an embedding ("auto").
        sample_size, max_distinct: the memory bounds of ``adapt`` (module docstring).
        seed: the reservoir sample's random seed (the same data gives the same statistics).
    """

    def __init__(
        self,
        features: Mapping[str, str | Feature],
        output_mode: str = "concat",
        one_hot_max: int = ONE_HOT_MAX,
        sample_size: int = SAMPLE_SIZE,
        max_distinct: int = MAX_DISTINCT,
        seed: int = 0,
    ) -> None:
        if not isinstance(features, Mapping) or not features:
            raise ValueError("FeatureSpace: features must be a non-empty dict {column: type}")
        if output_mode not in ("concat", "dict"):
            raise ValueError(
                f"FeatureSpace: output_mode must be 'concat' or 'dict', got {output_mode!r}"
            )
        self.features: dict[str, Feature] = {}
        for name, feature in features.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"FeatureSpace: column names must be strings, got {name!r}")
            self.features[name] = feature if isinstance(feature, Feature) else Feature(feature)
        self.output_mode = output_mode
        self.one_hot_max = int(one_hot_max)
        self.sample_size = int(sample_size)
        self.max_distinct = int(max_distinct)
        self.seed = seed
        self._stats: dict[str, _NumericStats | _CategoryCounts] | None = None
        self._inputs: dict[str, KerasTensor] | None = None
        self._encoded: dict[str, KerasTensor] | None = None
        self.rows = 0

    # -- feature types, by Keras' names ------------------------------------------------------
    @staticmethod
    def float() -> Feature:
        return Feature("float")

    @staticmethod
    def float_normalized() -> Feature:
        return Feature("float_normalized")

    @staticmethod
    def float_robust(
        clip: builtins.float | None = DEFAULT_CLIP,
        missing_indicator: bool | str = "auto",
        scale_factor: builtins.float = 1.0,
        one_hot_values: int = 0,
    ) -> Feature:
        """RealMLP's robust scaling ``(x - median) / IQR`` (times ``scale_factor``: 1.349
        makes it unit variance for normal data) with smooth clipping at ``clip``. A column
        of whole numbers with 3 to ``one_hot_values`` distinct values (at most
        `DISTINCT_MAX`; e.g. an hour or a month as a number) also gets a one-hot encoding
        of its value (a `Discretization` with a boundary halfway between consecutive
        values, concatenated after the scaled value; a missing value counts as the
        median), so the network need not learn a non-monotone function of one input;
        0 (the default): never. When more than `ONE_HOT_VALUES_COLUMNS` columns of the
        space qualify, none gets it (small counts or pixel intensities, not codes)."""
        return Feature(
            "float_robust",
            {
                "clip": clip,
                "missing_indicator": missing_indicator,
                "scale_factor": scale_factor,
                "one_hot_values": int(one_hot_values),
            },
        )

    @staticmethod
    def float_discretized(num_bins: int = 32) -> Feature:
        return Feature("float_discretized", {"num_bins": int(num_bins)})

    @staticmethod
    def string_categorical(
        max_tokens: int | None = None, output_mode: str = "auto", embedding_dim: int | None = None
    ) -> Feature:
        return Feature(
            "string_categorical",
            {"max_tokens": max_tokens, "output_mode": output_mode, "embedding_dim": embedding_dim},
        )

    @staticmethod
    def integer_categorical(
        max_tokens: int | None = None, output_mode: str = "auto", embedding_dim: int | None = None
    ) -> Feature:
        return Feature(
            "integer_categorical",
            {"max_tokens": max_tokens, "output_mode": output_mode, "embedding_dim": embedding_dim},
        )

    @staticmethod
    def string_hashed(num_bins: int = 32) -> Feature:
        return Feature("string_hashed", {"num_bins": int(num_bins)})

    @staticmethod
    def integer_hashed(num_bins: int = 32) -> Feature:
        return Feature("integer_hashed", {"num_bins": int(num_bins)})

    @classmethod
    def from_kinds(
        cls, kinds: Mapping[str, str], numeric: str | Feature | None = None, **kwargs: Any
    ) -> FeatureSpace:
        """The automatic choice for columns of the given kinds (``numeric``, ``boolean``:
        ``numeric``, by default ``float_robust()``; ``categorical``: ``string_categorical``)."""
        features: dict[str, str | Feature] = {}
        for name, kind in kinds.items():
            if kind in ("numeric", "boolean"):
                features[name] = numeric if numeric is not None else cls.float_robust()
            elif kind == "categorical":
                features[name] = cls.string_categorical()
            else:
                raise ValueError(f"FeatureSpace: column {name!r} has the unknown kind {kind!r}")
        return cls(features, **kwargs)

    @classmethod
    def from_table(cls, table: Any, exclude: Iterable[str] = (), **kwargs: Any) -> FeatureSpace:
        """The automatic choice for every column of ``table`` (a `Table` or a DataFrame)
        except ``exclude`` (the target); not adapted yet."""
        table = tables.from_frame(table) if tables.is_frame(table) else table
        skip = set(exclude)
        kinds = {c.name: c.kind for c in table.columns if c.name not in skip}
        if not kinds:
            raise ValueError("FeatureSpace: the table has no columns besides the target")
        return cls.from_kinds(kinds, **kwargs)

    # -- adapt -------------------------------------------------------------------------------
    def adapt(self, data: Any) -> FeatureSpace:
        """Compute every column's statistics in one pass over ``data``: a `Table`, a pandas
        or polars DataFrame, a dict of arrays, or an iterable of those (batches)."""
        rng = np.random.default_rng(self.seed)
        stats: dict[str, _NumericStats | _CategoryCounts] = {}
        for name, feature in self.features.items():
            if feature.kind in _NUMERIC:
                stats[name] = _NumericStats(self.sample_size, rng)
            else:
                stats[name] = _CategoryCounts(self.max_distinct)
        rows = 0
        for batch in _batches(data):
            for name, feature in self.features.items():
                column = _column(batch, name)
                column_stats = stats[name]
                if isinstance(column_stats, _NumericStats):
                    try:
                        values = as_float_column(column).reshape(-1)
                    except TypeError:
                        raise tables.TableError(
                            f"FeatureSpace: column {name!r} ({feature.kind}) must hold numbers"
                        ) from None
                    column_stats.update(values)
                else:
                    column_stats.update(_categories(column, feature.kind, name))
            rows += len(_column(batch, next(iter(self.features))))
        if rows == 0:
            raise tables.TableError("FeatureSpace.adapt: the data has no rows")
        for name, column_stats in stats.items():
            if column_stats.count == 0:
                raise tables.TableError(
                    f"FeatureSpace.adapt: column {name!r} has no values in any of the "
                    f"{rows} rows; remove it"
                )
        self._stats = stats
        self.rows = rows
        self._inputs = self._encoded = None
        return self

    @property
    def adapted(self) -> bool:
        return self._stats is not None

    def statistics(self, name: str) -> dict[str, Any]:
        """What ``adapt`` learned about one column (for tests and reports)."""
        stats = self._require_stats()[name]
        if isinstance(stats, _NumericStats):
            q25, median, q75 = stats.quantiles([0.25, 0.5, 0.75])
            return {
                "count": stats.count,
                "missing": stats.missing,
                "min": stats.low,
                "max": stats.high,
                "mean": stats.mean,
                "variance": stats.variance,
                "median": median,
                "q25": q25,
                "q75": q75,
            }
        return {
            "count": stats.count,
            "missing": stats.missing,
            "vocabulary": stats.vocabulary(MAX_TOKENS),
            "counts": dict(stats.counts),
        }

    def _require_stats(self) -> dict[str, _NumericStats | _CategoryCounts]:
        if self._stats is None:
            raise RuntimeError("FeatureSpace: call adapt() with the training data first")
        return self._stats

    # -- the layers --------------------------------------------------------------------------
    def get_inputs(self) -> dict[str, KerasTensor]:
        """``{column: Input(shape=(1,), name=column)}``: the model's inputs."""
        self._build()
        assert self._inputs is not None
        return self._inputs

    def get_encoded_features(self) -> KerasTensor | dict[str, KerasTensor]:
        """The encoded features: one tensor (``concat``) or one per column (``dict``)."""
        self._build()
        assert self._encoded is not None
        if self.output_mode == "dict":
            return dict(self._encoded)
        parts = list(self._encoded.values())
        return parts[0] if len(parts) == 1 else Concatenate()(parts)

    def _build(self) -> None:
        if self._inputs is not None:
            return
        stats = self._require_stats()
        inputs: dict[str, KerasTensor] = {}
        encoded: dict[str, KerasTensor] = {}
        coded = self._value_codes(stats)
        for name, feature in self.features.items():
            tensor = Input(shape=(1,), name=name)
            inputs[name] = tensor
            encoded[name] = self._encode(tensor, feature, stats[name], name in coded)
        for tensor in encoded.values():
            rename_clashes(tensor, set(inputs))
        self._inputs, self._encoded = inputs, encoded

    def _value_codes(self, stats: dict[str, _NumericStats | _CategoryCounts]) -> set[str]:
        """The ``float_robust`` columns that get a one-hot of their value: 3 to
        ``one_hot_values`` distinct whole numbers, and none when more than
        `ONE_HOT_VALUES_COLUMNS` columns qualify (a table of small counts or pixel
        intensities, such as scikit-learn's digits, is not a table of codes)."""
        coded = set()
        for name, feature in self.features.items():
            column = stats[name]
            if feature.kind != "float_robust" or not isinstance(column, _NumericStats):
                continue
            values = column.distinct
            limit = min(int(feature.options.get("one_hot_values", 0)), DISTINCT_MAX)
            if values is None or not 3 <= values.size <= limit:
                continue
            if np.array_equal(values, np.round(values)):  # not iris' 0.1 cm measurements
                coded.add(name)
        return coded if len(coded) <= ONE_HOT_VALUES_COLUMNS else set()

    def _encode(
        self,
        tensor: KerasTensor,
        feature: Feature,
        stats: _NumericStats | _CategoryCounts,
        coded: bool = False,
    ) -> KerasTensor:
        options = feature.options
        if isinstance(stats, _NumericStats):
            if feature.kind == "float":
                return tensor
            if feature.kind == "float_normalized":
                return Normalization(mean=stats.mean, variance=stats.variance)(tensor)
            if feature.kind == "float_discretized":
                bins = max(int(options.get("num_bins", 32)), 2)
                cuts = sorted(set(stats.quantiles([k / bins for k in range(1, bins)])))
                return Discretization(bin_boundaries=cuts, output_mode="one_hot")(tensor)
            q25, median, q75 = stats.quantiles([0.25, 0.5, 0.75])
            if q75 > q25:
                scale = 1.0 / (q75 - q25)
            elif stats.high > stats.low:
                scale = 2.0 / (stats.high - stats.low)
            else:
                scale = 0.0
            indicator = options.get("missing_indicator", "auto")
            if indicator == "auto":
                indicator = stats.missing > 0
            scale *= float(options.get("scale_factor", 1.0))
            scaled = RobustScaling(
                center=median,
                scale=scale if math.isfinite(scale) else 0.0,
                clip=options.get("clip", DEFAULT_CLIP),
                missing_indicator=bool(indicator),
            )(tensor)
            values = stats.distinct
            if not coded or values is None or not scale > 0:
                return scaled
            # Discretization refuses NaN, so it reads the column through an unclipped
            # RobustScaling (a missing value -> the median's bucket; the indicator above
            # says it was missing), with the boundaries moved the same way.
            shifted = RobustScaling(center=median, scale=scale, clip=None)(tensor)
            cuts = sorted({float((c - median) * scale) for c in (values[:-1] + values[1:]) / 2})
            one_hot = Discretization(bin_boundaries=cuts, output_mode="one_hot")(shifted)
            return Concatenate()([scaled, one_hot])
        if feature.kind in ("string_hashed", "integer_hashed"):
            return Hashing(num_bins=int(options.get("num_bins", 32)), output_mode="one_hot")(tensor)
        max_tokens = options.get("max_tokens") or MAX_TOKENS
        vocabulary = stats.vocabulary(int(max_tokens))
        lookup_type = StringLookup if feature.kind == "string_categorical" else IntegerLookup
        mode = options.get("output_mode", "auto")
        if mode == "auto":
            mode = "one_hot" if len(vocabulary) <= self.one_hot_max else "embedding"
        if mode != "embedding":
            return lookup_type(vocabulary=vocabulary, output_mode=mode)(tensor)
        size = len(vocabulary) + 1  # index 0: unseen and missing values
        dim = options.get("embedding_dim") or embedding_size(size)
        indices = lookup_type(vocabulary=vocabulary, output_mode="int")(tensor)
        return Flatten()(Embedding(size, int(dim))(indices))

    def encoded_size(self) -> int:
        """Width of the concatenated encoding."""
        encoded = self.get_encoded_features()
        if isinstance(encoded, dict):
            return sum(int(np.prod(t.sample_shape)) for t in encoded.values())
        return int(np.prod(encoded.sample_shape))


def rename_clashes(output: Any, taken: set[str]) -> None:
    """Rename the layers behind ``output`` whose name is an input column's (a column called
    "dense" and the first Dense layer): a model's layer names must be unique. Input layers
    keep their column names."""
    seen: set[int] = set()
    stack = [output]
    while stack:
        layer = stack.pop().layer
        if id(layer) in seen or isinstance(layer, InputLayer):
            continue
        seen.add(id(layer))
        if layer.name in taken:
            k = 1
            while f"{layer.name}_{k}" in taken:
                k += 1
            layer.name = f"{layer.name}_{k}"
        taken.add(layer.name)
        node = layer.inbound_node
        if node is not None:
            stack.extend(node.inputs)


def embedding_size(categories: int) -> int:
    """Embedding width for a column with ``categories`` indices: fast.ai's rule of thumb
    ``1.6 * n^0.56``, between 4 and 32."""
    return int(min(32, max(4, round(1.6 * categories**0.56))))


def _batches(data: Any) -> Iterable[Any]:
    if isinstance(data, (tables.Table, dict)) or tables.is_frame(data):
        return [data]
    if isinstance(data, (np.ndarray, str, bytes)):
        raise TypeError(
            "FeatureSpace.adapt: give a Table, a DataFrame, a dict of column arrays, or an "
            "iterable of those (batches)"
        )
    return data


def _column(batch: Any, name: str) -> np.ndarray:
    if tables.is_frame(batch):
        batch = tables.from_frame(batch)
    if isinstance(batch, tables.Table):
        return batch.column(name)
    if isinstance(batch, dict):
        if name not in batch:
            close = difflib.get_close_matches(name, [str(k) for k in batch], n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise tables.TableError(
                f"column {name!r} is not in the data; the columns are {list(batch)}{hint}"
            )
        return np.asarray(batch[name])
    raise TypeError(
        "FeatureSpace.adapt: each batch must be a Table, a DataFrame or a dict of column "
        f"arrays, got {type(batch).__name__}"
    )


def _categories(column: np.ndarray, kind: str, name: str) -> list[Any]:
    flat = np.asarray(column).reshape(-1)
    if kind in ("string_categorical", "string_hashed"):
        if flat.dtype.kind in "US":
            return [str(v) for v in flat.tolist()]
        values = flat.tolist()
        if flat.dtype == object and all(v is None or isinstance(v, str) for v in values):
            return values
        raise tables.TableError(f"FeatureSpace: column {name!r} ({kind}) must hold text")
    try:
        floats = as_float_column(flat)
    except TypeError:
        raise tables.TableError(
            f"FeatureSpace: column {name!r} ({kind}) must hold integers"
        ) from None
    present = floats[~np.isnan(floats)]
    if np.any(present != np.round(present)) or np.any(np.abs(present) > 2.0**62):
        raise tables.TableError(f"FeatureSpace: column {name!r} ({kind}) must hold integers")
    return [None if math.isnan(v) else int(v) for v in floats.tolist()]
