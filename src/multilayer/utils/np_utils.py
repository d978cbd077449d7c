"""Keras 2's ``keras.utils.np_utils``, kept for old programs: ``from keras.utils.np_utils
import to_categorical``. The functions are `multilayer.utils.to_categorical` and
`multilayer.utils.normalize` themselves."""

from multilayer.utils.data_utils import normalize, to_categorical

__all__ = ["normalize", "to_categorical"]
