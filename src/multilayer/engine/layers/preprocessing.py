"""Keras 3 preprocessing layers for structured data: IntegerLookup, StringLookup,
CategoryEncoding, Discretization and Hashing.

They have no weights: what they learn (a vocabulary, bin boundaries) is set by their
arguments or by `adapt`, and is part of their config, so a saved model carries it and
``predict`` applies exactly what training learned. Their outputs are not differentiable
(lookups, counts and bucket indices): backward returns a zero gradient for their input.

Index layout of the lookups (as in Keras): ``[mask token (if given)] + [num_oov_indices
out-of-vocabulary buckets] + vocabulary``. A value not in the vocabulary goes to an OOV bucket
(``value mod num_oov_indices`` for integers), never an error.

Limits: a vocabulary has at most `MAX_VOCABULARY` entries and an encoded output at most
`MAX_TOKENS` positions, checked before anything is allocated.
"""

from __future__ import annotations

import importlib
import numbers
from collections.abc import Iterable, Sequence, Sized
from typing import Any

import numpy as np

from multilayer.engine.layers.base import Layer
from multilayer.engine.layers.embedding import integer_indices
from multilayer.engine.registry import Config, positive_int

MAX_VOCABULARY = 1_000_000
MAX_TOKENS = 1_000_000
#: output modes of the lookups and of CategoryEncoding
ENCODINGS = ("one_hot", "multi_hot", "count")


def _output_mode(value: object, allowed: Sequence[str], where: str) -> str:
    if value == "tf_idf":
        raise ValueError(
            f"{where}: output_mode='tf_idf' is not supported; use one of {list(allowed)}"
        )
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{where}: output_mode must be one of {list(allowed)}, got {value!r}")
    return value


def _no_sparse(sparse: object, where: str) -> None:
    if sparse is not False:
        raise ValueError(f"{where}: sparse=True is not supported (outputs are dense arrays)")


def _encode(indices: np.ndarray, depth: int, mode: str, where: str) -> np.ndarray:
    """One-hot, multi-hot or count encoding of a batch of ``indices`` into ``depth`` positions,
    shaped as `_encoded_shape` says (multi-hot and count reduce the last sample axis)."""
    bad = (indices < 0) | (indices >= depth)
    if np.any(bad):
        raise ValueError(
            f"{where}: value {int(indices[bad].flat[0])} is outside [0, {depth}) (depth {depth})"
        )
    sample = indices.shape[1:]
    out = np.zeros((indices.shape[0], *_encoded_shape(sample, depth, mode)), dtype=np.float32)
    if mode == "one_hot":
        keys = indices.reshape(out.shape[:-1])
        np.put_along_axis(out, keys[..., None], 1, axis=-1)
        return out
    keys = indices if sample else indices[:, None]
    rows = out.reshape(-1, depth)
    row_of = np.repeat(np.arange(rows.shape[0]), keys.shape[-1])
    if mode == "count":
        np.add.at(rows, (row_of, keys.reshape(-1)), 1)
    else:
        rows[row_of, keys.reshape(-1)] = 1
    return out


def _encoded_shape(sample_shape: tuple[int, ...], depth: int, mode: str) -> tuple[int, ...]:
    """Keras' output sample shape: one-hot adds an axis of ``depth`` (replacing a last axis
    of 1); multi-hot and count replace the last axis by ``depth``."""
    if mode == "one_hot":
        if sample_shape and sample_shape[-1] == 1:
            return (*sample_shape[:-1], depth)
        return (*sample_shape, depth)
    return (*sample_shape[:-1], depth)


class _Weightless(Layer):
    """A layer without weights whose output does not depend differentiably on its input."""

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return np.zeros((grad.shape[0], *(self.input_shape or ())), dtype=grad.dtype)


class CategoryEncoding(_Weightless):
    """Encodes integer category ids in ``[0, num_tokens)``: ``"one_hot"``, ``"multi_hot"``
    (Keras' default) or ``"count"``. An id outside the range raises ValueError."""

    def __init__(
        self,
        num_tokens: int | None = None,
        output_mode: str = "multi_hot",
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_tokens is None:
            raise ValueError("CategoryEncoding: num_tokens must be given")
        self.num_tokens = positive_int(num_tokens, "CategoryEncoding: num_tokens")
        if self.num_tokens > MAX_TOKENS:
            raise ValueError(
                f"CategoryEncoding: num_tokens={self.num_tokens} is more than the limit of {MAX_TOKENS}"
            )
        self.output_mode = _output_mode(output_mode, ENCODINGS, "CategoryEncoding")
        _no_sparse(sparse, "CategoryEncoding")

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.input_shape = tuple(input_shape)
        self.output_shape = _encoded_shape(self.input_shape, self.num_tokens, self.output_mode)
        self.built = True

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        where = f"CategoryEncoding layer {self.name!r}"
        out = _encode(integer_indices(x, where), self.num_tokens, self.output_mode, where)
        return out.astype(self.dtype or np.float32, copy=False)

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "num_tokens": self.num_tokens,
            "output_mode": self.output_mode,
            "sparse": False,
        }


def _without_missing(x: np.ndarray, filler: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` with its missing values (None; NaN in floats) replaced by ``filler``, and where
    they were (None when there are none)."""
    if x.dtype == object:
        missing = np.frompyfunc(_is_missing, 1, 1)(x).astype(bool)
    elif np.issubdtype(x.dtype, np.floating):
        missing = np.isnan(x)
    else:
        return x, None
    if not missing.any():
        return x, None
    x = x.astype(object if x.dtype == object or isinstance(filler, str) else x.dtype)
    x[missing] = filler
    return x, missing


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class _Lookup(_Weightless):
    """The shared part of IntegerLookup and StringLookup (Keras' IndexLookup).

    Missing values (``None`` in an object array, NaN in a float array) map to the
    out-of-vocabulary index, as unseen values do.
    """

    kind = ""
    accepts_raw_input = True
    max_tokens: int | None
    num_oov_indices: int
    mask_token: Any
    oov_token: Any
    output_mode: str

    def __init__(
        self,
        max_tokens: int | None,
        num_oov_indices: int,
        mask_token: Any,
        oov_token: Any,
        vocabulary: Any,
        invert: bool,
        output_mode: str,
        sparse: bool,
        pad_to_max_tokens: bool,
        idf_weights: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = self.kind
        self.max_tokens = (
            None if max_tokens is None else positive_int(max_tokens, f"{where}: max_tokens")
        )
        if self.max_tokens is not None and self.max_tokens > MAX_VOCABULARY:
            raise ValueError(
                f"{where}: max_tokens={max_tokens} is more than the limit of {MAX_VOCABULARY}"
            )
        if (
            isinstance(num_oov_indices, bool)
            or not isinstance(num_oov_indices, numbers.Integral)
            or num_oov_indices < 0
        ):
            raise ValueError(
                f"{where}: num_oov_indices must be an integer >= 0, got {num_oov_indices!r}"
            )
        self.num_oov_indices = int(num_oov_indices)
        if invert is not False:
            raise ValueError(f"{where}: invert=True is not supported")
        if pad_to_max_tokens is not False:
            raise ValueError(f"{where}: pad_to_max_tokens=True is not supported")
        if idf_weights is not None:
            raise ValueError(f"{where}: idf_weights are not supported (no tf_idf output mode)")
        _no_sparse(sparse, where)
        self.output_mode = _output_mode(output_mode, ("int", *ENCODINGS), where)
        self.mask_token = None if mask_token is None else self._token(mask_token, "mask_token")
        if self.mask_token is not None and self.output_mode != "int":
            raise ValueError(f"{where}: mask_token is only supported with output_mode='int'")
        self.oov_token = self._token(oov_token, "oov_token")
        self.vocabulary: list[Any] | None = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # subclasses: one token of the vocabulary, checked
    def _token(self, value: Any, argument: str) -> Any:
        raise NotImplementedError

    def _tokens(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _oov_index(self, tokens: np.ndarray) -> np.ndarray:
        return np.zeros(tokens.shape, dtype=np.int64)

    def set_vocabulary(self, vocabulary: Any) -> None:
        """Use ``vocabulary`` (a list of distinct tokens, without the mask and OOV tokens)."""
        where = self.kind
        if isinstance(vocabulary, (str, bytes)) or not isinstance(
            vocabulary, (Iterable, np.ndarray)
        ):
            raise ValueError(
                f"{where}: vocabulary must be a list of tokens, got {type(vocabulary).__name__}"
            )
        if isinstance(vocabulary, np.ndarray) and vocabulary.ndim != 1:
            raise ValueError(f"{where}: vocabulary must be one-dimensional")
        if isinstance(vocabulary, Sized) and len(vocabulary) > MAX_VOCABULARY:
            raise ValueError(
                f"{where}: a vocabulary of {len(vocabulary)} tokens is more than the limit of {MAX_VOCABULARY}"
            )
        tokens = []
        for item in vocabulary:
            tokens.append(self._token(item, "vocabulary"))
            if len(tokens) > MAX_VOCABULARY:
                raise ValueError(f"{where}: a vocabulary of more than {MAX_VOCABULARY} tokens")
        seen = set(tokens)
        if len(seen) != len(tokens):
            raise ValueError(f"{where}: the vocabulary has repeated tokens")
        for special, name in ((self.mask_token, "mask_token"), (self.oov_token, "oov_token")):
            if (
                special is not None
                and special in set(tokens)
                and self.num_oov_indices + (name == "mask_token")
            ):
                raise ValueError(f"{where}: the vocabulary contains the {name} {special!r}")
        if self.max_tokens is not None and self.vocabulary_size_for(len(tokens)) > self.max_tokens:
            raise ValueError(
                f"{where}: a vocabulary of {len(tokens)} tokens (with the OOV and mask indices) is "
                f"more than max_tokens={self.max_tokens}"
            )
        self.vocabulary = tokens
        self._index = {token: i for i, token in enumerate(tokens)}

    def vocabulary_size_for(self, n: int) -> int:
        return n + self.num_oov_indices + (self.mask_token is not None)

    def vocabulary_size(self) -> int:
        """The number of indices the layer gives: mask, OOV buckets and vocabulary."""
        return self.vocabulary_size_for(len(self.vocabulary or []))

    def get_vocabulary(self) -> list[Any]:
        """All tokens by index, the mask and OOV tokens first (as Keras lists them)."""
        head = [] if self.mask_token is None else [self.mask_token]
        return head + [self.oov_token] * self.num_oov_indices + list(self.vocabulary or [])

    def adapt(self, data: Any) -> None:
        """Learn the vocabulary from ``data`` (an array, or an iterable of batches): the tokens
        by decreasing frequency, ties by decreasing token (as Keras sorts them), at most
        ``max_tokens`` minus the OOV and mask indices. The mask and OOV tokens are left out."""
        if (
            isinstance(data, np.ndarray)
            or not isinstance(data, Iterable)
            or isinstance(data, (str, bytes))
        ):
            batches: Iterable[Any] = [data]
        else:
            batches = data
        counts: dict[Any, int] = {}
        for batch in batches:
            if isinstance(batch, tuple):
                batch = batch[0]
            tokens = self._tokens(np.asarray(batch))
            values, numbers_seen = np.unique(tokens.reshape(-1), return_counts=True)
            for value, count in zip(values.tolist(), numbers_seen.tolist(), strict=True):
                value = self._token(value, "data")
                counts[value] = counts.get(value, 0) + count
                if len(counts) > 10 * MAX_VOCABULARY:
                    raise ValueError(
                        f"{self.kind}.adapt: more than {10 * MAX_VOCABULARY} distinct tokens"
                    )
        for special in (self.mask_token, self.oov_token if self.num_oov_indices else None):
            if special is not None:
                counts.pop(special, None)
        if not counts:
            raise ValueError(f"{self.kind}.adapt: no data")
        ordered = sorted(counts, key=lambda token: (counts[token], token), reverse=True)
        room = (
            MAX_VOCABULARY
            if self.max_tokens is None
            else self.max_tokens - self.vocabulary_size_for(0)
        )
        self.set_vocabulary(ordered[: max(room, 0)])

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.input_shape = tuple(input_shape)
        if self.output_mode == "int":
            self.output_shape = self.input_shape
        else:
            if self.vocabulary is None:
                raise ValueError(
                    f"{self.kind} layer {self.name!r}: give a vocabulary or call adapt() before "
                    f"building it with output_mode={self.output_mode!r}"
                )
            self.output_shape = _encoded_shape(
                self.input_shape, self.vocabulary_size(), self.output_mode
            )
        self.built = True

    def lookup(self, x: np.ndarray) -> np.ndarray:
        """The int64 indices of ``x``'s tokens (unseen tokens: an OOV bucket)."""
        if self.vocabulary is None:
            raise ValueError(
                f"{self.kind} layer {self.name!r} has no vocabulary: give one or call adapt()"
            )
        x = np.asarray(x)
        fast = self._lookup_known(x)
        if fast is not None:
            return fast
        x, missing = _without_missing(x, self.oov_token)
        if missing is not None and not self.num_oov_indices:
            raise ValueError(
                f"{self.kind} layer {self.name!r}: a missing value (None or NaN) and "
                "num_oov_indices=0"
            )
        tokens = self._tokens(x)
        offset = self.num_oov_indices + (self.mask_token is not None)
        unique, inverse = np.unique(tokens.reshape(-1), return_inverse=True)
        found = np.array([self._index.get(t, -1) for t in unique.tolist()], dtype=np.int64)
        indices = found[inverse].reshape(tokens.shape)
        known = indices >= 0
        if not self.num_oov_indices and not np.all(known):
            missing = unique[found < 0][0].item()
            raise ValueError(
                f"{self.kind} layer {self.name!r}: {missing!r} is not in the vocabulary and "
                "num_oov_indices=0"
            )
        result: np.ndarray = np.where(
            known, indices + offset, self._oov_index(tokens) + (self.mask_token is not None)
        )
        if self.mask_token is not None:
            result[tokens == self.mask_token] = 0
        if missing is not None:
            result[missing] = self.mask_token is not None  # the first OOV index
        return result.astype(np.int64)

    def _lookup_known(self, x: np.ndarray) -> np.ndarray | None:
        """The fast path of `lookup` for an object array of strings that are all in the
        vocabulary (a training batch, usually): one dictionary look-up per value. None
        (anything else: a missing, unseen or non-string value, a mask token, several OOV
        indices) leaves the work to the general path, which gives the same indices."""
        if x.dtype != object or self.kind != "StringLookup" or self.mask_token is not None:
            return None
        if self.num_oov_indices != 1 or self.vocabulary is None:
            return None
        get = self._index.get
        found = np.fromiter((get(v, -1) for v in x.reshape(-1).tolist()), np.int64, x.size)
        if found.size and found.min() < 0:
            return None
        return (found + 1).reshape(x.shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        indices = self.lookup(x)
        if self.output_mode == "int":
            return indices
        where = f"{self.kind} layer {self.name!r}"
        return _encode(indices, self.vocabulary_size(), self.output_mode, where).astype(
            self.dtype or np.float32, copy=False
        )

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices,
            "mask_token": self.mask_token,
            "oov_token": self.oov_token,
            "vocabulary": None if self.vocabulary is None else list(self.vocabulary),
            "invert": False,
            "output_mode": self.output_mode,
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
        }


class IntegerLookup(_Lookup):
    """Maps integer values to contiguous indices (Keras 3 ``IntegerLookup``).

    Args as in Keras: ``max_tokens``, ``num_oov_indices=1`` (several buckets: an unseen value
    ``v`` goes to bucket ``v mod num_oov_indices``), ``mask_token=None``, ``oov_token=-1``,
    ``vocabulary``, ``output_mode`` (``"int"``, ``"one_hot"``, ``"multi_hot"``, ``"count"``).
    ``"int"`` output is int64 indices (floats holding whole numbers are accepted as input).
    """

    kind = "IntegerLookup"

    def __init__(
        self,
        max_tokens: int | None = None,
        num_oov_indices: int = 1,
        mask_token: int | None = None,
        oov_token: int = -1,
        vocabulary: Any = None,
        vocabulary_dtype: str = "int64",
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        sparse: bool = False,
        pad_to_max_tokens: bool = False,
        **kwargs: Any,
    ) -> None:
        if vocabulary_dtype != "int64":
            raise ValueError(
                f"IntegerLookup: vocabulary_dtype must be 'int64', got {vocabulary_dtype!r}"
            )
        super().__init__(
            max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, invert,
            output_mode, sparse, pad_to_max_tokens, idf_weights, **kwargs,
        )  # fmt: skip

    def _token(self, value: Any, argument: str) -> int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**62:
                return int(value)
            raise ValueError(f"IntegerLookup: {argument} must hold integers, got {value!r}")
        if not -(2**63) <= int(value) < 2**63:
            raise ValueError(f"IntegerLookup: {argument} value {value!r} is outside int64")
        return int(value)

    def _tokens(self, x: np.ndarray) -> np.ndarray:
        return integer_indices(x, f"IntegerLookup layer {self.name!r}")

    def _oov_index(self, tokens: np.ndarray) -> np.ndarray:
        if self.num_oov_indices <= 1:
            return np.zeros(tokens.shape, dtype=np.int64)
        return np.mod(tokens, self.num_oov_indices)

    def get_config(self) -> Config:
        return {**super().get_config(), "vocabulary_dtype": "int64"}


class StringLookup(_Lookup):
    """Maps strings to contiguous indices (Keras 3 ``StringLookup``): ``oov_token="[UNK]"``,
    ``mask_token=None``, one OOV bucket (Keras spreads several with FarmHash, which is not
    reproduced here, so ``num_oov_indices`` is 0 or 1).

    Call it on string arrays with `lookup` (or ``forward``); fit/predict of a model take
    numeric arrays only, so in a model put the indices it gives (or an IntegerLookup) first.
    """

    kind = "StringLookup"

    def __init__(
        self,
        max_tokens: int | None = None,
        num_oov_indices: int = 1,
        mask_token: str | None = None,
        oov_token: str = "[UNK]",
        vocabulary: Any = None,
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        pad_to_max_tokens: bool = False,
        sparse: bool = False,
        encoding: str = "utf-8",
        **kwargs: Any,
    ) -> None:
        if encoding != "utf-8":
            raise ValueError(f"StringLookup: encoding must be 'utf-8', got {encoding!r}")
        if isinstance(num_oov_indices, numbers.Integral) and num_oov_indices > 1:
            raise ValueError(
                "StringLookup: num_oov_indices > 1 is not supported (Keras hashes unseen strings "
                "into the buckets with FarmHash, which multilayer does not reproduce)"
            )
        super().__init__(
            max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, invert,
            output_mode, sparse, pad_to_max_tokens, idf_weights, **kwargs,
        )  # fmt: skip

    def _token(self, value: Any, argument: str) -> str:
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(
                    f"StringLookup: {argument} holds bytes that are not UTF-8"
                ) from None
        if not isinstance(value, str):
            raise ValueError(f"StringLookup: {argument} must hold strings, got {value!r}")
        return value

    def _tokens(self, x: np.ndarray) -> np.ndarray:
        if x.dtype.kind == "S":
            x = np.char.decode(x, "utf-8")
        if x.dtype.kind == "O" and all(isinstance(v, (str, bytes)) for v in x.reshape(-1).tolist()):
            x = np.array(
                [self._token(v, "input") for v in x.reshape(-1).tolist()], dtype=str
            ).reshape(x.shape)
        if x.dtype.kind != "U":
            raise TypeError(
                f"StringLookup layer {self.name!r}: expects strings, got an array of dtype {x.dtype}"
            )
        return x

    def get_config(self) -> Config:
        return {**super().get_config(), "encoding": "utf-8"}


class Discretization(_Weightless):
    """Buckets numbers by ``bin_boundaries``: a value ``v`` goes to bucket ``i`` with
    ``boundaries[i-1] <= v < boundaries[i]`` (Keras 3 ``Discretization``).

    Give ``bin_boundaries`` (increasing), or ``num_bins`` and call `adapt`: the boundaries are
    then the quantiles ``1/num_bins, ..., (num_bins-1)/num_bins`` of the data, each a data
    value (NumPy's ``method="lower"``). Keras computes approximate quantiles within
    ``epsilon``: on small data they agree (Keras' documented example gives the same buckets),
    on large data its boundaries can differ slightly.
    ``output_mode``: ``"int"`` (bucket indices, Keras' default), ``"one_hot"``,
    ``"multi_hot"`` or ``"count"``.
    """

    num_bins: int | None
    epsilon: float
    output_mode: str

    def __init__(
        self,
        bin_boundaries: Sequence[float] | None = None,
        num_bins: int | None = None,
        epsilon: float = 0.01,
        output_mode: str = "int",
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (bin_boundaries is None) == (num_bins is None):
            raise ValueError("Discretization: give exactly one of bin_boundaries and num_bins")
        self.num_bins = (
            None if num_bins is None else positive_int(num_bins, "Discretization: num_bins")
        )
        if self.num_bins is not None and self.num_bins > MAX_TOKENS:
            raise ValueError(
                f"Discretization: num_bins={num_bins} is more than the limit of {MAX_TOKENS}"
            )
        if (
            not isinstance(epsilon, numbers.Real)
            or isinstance(epsilon, bool)
            or not 0 < epsilon < 1
        ):
            raise ValueError(f"Discretization: epsilon must be a number in (0, 1), got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.output_mode = _output_mode(output_mode, ("int", *ENCODINGS), "Discretization")
        _no_sparse(sparse, "Discretization")
        self.bin_boundaries: list[float] | None = None
        if bin_boundaries is not None:
            self.bin_boundaries = self._boundaries(bin_boundaries)

    @staticmethod
    def _boundaries(value: Any) -> list[float]:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            raise ValueError(
                f"Discretization: bin_boundaries must be a list of numbers, got {value!r}"
            )
        if len(value) > MAX_TOKENS:
            raise ValueError(f"Discretization: more than {MAX_TOKENS} bin boundaries")
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("Discretization: bin_boundaries must be a list of numbers") from None
        if array.ndim != 1 or not np.all(np.isfinite(array)) or np.any(np.diff(array) < 0):
            raise ValueError("Discretization: bin_boundaries must be finite and non-decreasing")
        return [float(b) for b in array]

    def _depth(self) -> int:
        if self.bin_boundaries is not None:
            return len(self.bin_boundaries) + 1
        return int(self.num_bins or 0)

    def adapt(self, data: Any) -> None:
        """Set the boundaries to the quantiles of ``data`` (an array of numbers)."""
        if self.num_bins is None:
            raise ValueError("Discretization: adapt needs num_bins (bin_boundaries were given)")
        array = np.asarray(data)
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or array.size == 0:
            raise ValueError("Discretization.adapt: data must be a non-empty array of numbers")
        array = array.astype(np.float64).reshape(-1)
        if not np.all(np.isfinite(array)):
            raise ValueError("Discretization.adapt: data contains NaN or infinite values")
        quantiles = np.linspace(0, 1, self.num_bins + 1)[1:-1]
        self.bin_boundaries = [float(b) for b in np.quantile(array, quantiles, method="lower")]

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.input_shape = tuple(input_shape)
        if self.output_mode == "int":
            self.output_shape = self.input_shape
        else:
            self.output_shape = _encoded_shape(self.input_shape, self._depth(), self.output_mode)
        self.built = True

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if self.bin_boundaries is None:
            raise ValueError(f"Discretization layer {self.name!r}: call adapt() before using it")
        buckets = np.digitize(np.asarray(x, dtype=np.float64), self.bin_boundaries).astype(np.int64)
        if self.output_mode == "int":
            return buckets
        where = f"Discretization layer {self.name!r}"
        return _encode(buckets, self._depth(), self.output_mode, where).astype(
            self.dtype or np.float32, copy=False
        )

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "bin_boundaries": self.bin_boundaries,
            "num_bins": self.num_bins if self.bin_boundaries is None else None,
            "epsilon": self.epsilon,
            "output_mode": self.output_mode,
            "sparse": False,
        }


def _fingerprint64() -> Any:
    """FarmHash's Fingerprint64 (TensorFlow's ``to_hash_bucket_fast``), from pyfarmhash."""
    try:
        module = importlib.import_module("farmhash")
    except ImportError:
        raise ImportError(
            "Hashing needs the pyfarmhash package (Keras hashes with FarmHash Fingerprint64): "
            "pip install 'multilayer[hashing]'"
        ) from None
    return module.fingerprint64


class Hashing(_Weightless):
    """Hashes values into ``num_bins`` buckets (Keras 3 ``Hashing``): bucket
    ``Fingerprint64(str(value)) mod num_bins``, FarmHash as Keras and TensorFlow compute it
    (needs pyfarmhash, the ``hashing`` extra). Integers are hashed as their decimal text, as
    Keras does; strings as UTF-8.

    ``mask_value``: values equal to it go to bucket 0, the others to ``1 .. num_bins - 1``.
    ``salt`` (Keras' SipHash variant) is not supported. ``output_mode``: ``"int"`` (Keras'
    default), ``"one_hot"``, ``"multi_hot"`` or ``"count"``. A missing value (``None`` in
    a text array) is hashed as the empty string.
    """

    accepts_raw_input = True
    num_bins: int
    output_mode: str

    def __init__(
        self,
        num_bins: int,
        mask_value: Any = None,
        salt: Any = None,
        output_mode: str = "int",
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_bins = positive_int(num_bins, "Hashing: num_bins")
        if self.num_bins > MAX_TOKENS:
            raise ValueError(f"Hashing: num_bins={num_bins} is more than the limit of {MAX_TOKENS}")
        if salt is not None:
            raise ValueError(
                "Hashing: salt is not supported (Keras then hashes with SipHash, which multilayer "
                "does not reproduce); leave salt=None"
            )
        if mask_value is not None and not isinstance(mask_value, (str, int)):
            raise ValueError(
                f"Hashing: mask_value must be a string or an integer, got {mask_value!r}"
            )
        if isinstance(mask_value, bool):
            raise ValueError(
                f"Hashing: mask_value must be a string or an integer, got {mask_value!r}"
            )
        if mask_value is not None and self.num_bins < 2:
            raise ValueError("Hashing: num_bins must be at least 2 with a mask_value")
        self.mask_value = mask_value
        self.output_mode = _output_mode(output_mode, ("int", *ENCODINGS), "Hashing")
        _no_sparse(sparse, "Hashing")
        self._hash = _fingerprint64()

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.input_shape = tuple(input_shape)
        if self.output_mode == "int":
            self.output_shape = self.input_shape
        else:
            self.output_shape = _encoded_shape(self.input_shape, self.num_bins, self.output_mode)
        self.built = True

    def _texts(self, x: np.ndarray) -> list[str]:
        if x.dtype.kind in "US" or x.dtype == object:
            values = ["" if _is_missing(v) else v for v in x.reshape(-1).tolist()]
            if not all(isinstance(v, (str, bytes)) for v in values):
                raise TypeError(f"Hashing layer {self.name!r}: expects strings or integers")
            return [v if isinstance(v, str) else v.decode("utf-8", "replace") for v in values]
        indices = integer_indices(x, f"Hashing layer {self.name!r}")
        return [str(v) for v in indices.reshape(-1).tolist()]

    def hash(self, x: Any) -> np.ndarray:
        """The int64 bucket of each value of ``x``."""
        array = np.asarray(x)
        texts = self._texts(array)
        if self.mask_value is None:
            buckets = [self._hash(t) % self.num_bins for t in texts]
        else:
            mask = str(self.mask_value)
            buckets = [0 if t == mask else self._hash(t) % (self.num_bins - 1) + 1 for t in texts]
        return np.array(buckets, dtype=np.int64).reshape(array.shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        buckets = self.hash(x)
        if self.output_mode == "int":
            return buckets
        where = f"Hashing layer {self.name!r}"
        return _encode(buckets, self.num_bins, self.output_mode, where).astype(
            self.dtype or np.float32, copy=False
        )

    def get_config(self) -> Config:
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "mask_value": self.mask_value,
            "salt": None,
            "output_mode": self.output_mode,
            "sparse": False,
        }
