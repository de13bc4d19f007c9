"""The example plugin from the README: scale every pixel by ``param``.

A processor is any class with ``__init__(**kwargs)`` and
``apply(img, meta) -> img``. The frame arrives read-only (the recorder may
share it): return a new array rather than writing into ``img``.
"""
import numpy as np


class MyFilter:
    def __init__(self, **kwargs):
        self.param = kwargs.get("param", 1.0)

    def apply(self, img: np.ndarray, meta: dict) -> np.ndarray:
        # meta includes keys like {"uid": frame_id, "timestamp": ts}
        return img * self.param
