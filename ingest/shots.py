"""Shot cutting by a documented frame-difference rule.

Rule: a new shot starts at frame ``i`` when the mean absolute difference
between the ``CUT_SIDE`` x ``CUT_SIDE`` grey thumbnails of frames ``i - 1``
and ``i`` (pixel values in [0, 1]) exceeds ``threshold``, and the current shot
is at least ``min_shot_s`` long. Hard cuts between different pictures change
most pixels of a coarse thumbnail at once (differences of 0.15 to 0.4); a
camera move, noise or compression changes them little from one frame to the
next (below 0.05 at the rates we sample). Gradual transitions (cross-fades,
wipes) are not detected as cuts: they stay inside one shot.
"""

from __future__ import annotations

import numpy as np

#: Side of the grey thumbnail the cut rule compares.
CUT_SIDE = 16
#: Default cut threshold on the mean absolute thumbnail difference.
THRESHOLD = 0.12
#: Default shortest shot, in seconds (a cut sooner than this is ignored).
MIN_SHOT_S = 0.25


def thumb_difference(prev: np.ndarray, cur: np.ndarray) -> float:
    """Mean absolute difference of two uint8 thumbnails, in [0, 1]."""
    diff = np.abs(prev.astype(np.int16) - cur.astype(np.int16))
    return float(diff.mean()) / 255.0


class ShotCutter:
    """Online form of the rule: feed frames in order, learn where shots start.

    Parameters
    ----------
    threshold : float
        Cut when the thumbnail difference exceeds this (0 < threshold < 1).
    min_shot_s : float
        Ignore a cut less than this many seconds after the shot's start.
    """

    def __init__(self, threshold: float = THRESHOLD, min_shot_s: float = MIN_SHOT_S) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold={threshold}: expected 0 < threshold < 1")
        if min_shot_s < 0:
            raise ValueError(f"min_shot_s={min_shot_s}: expected >= 0")
        self.threshold = threshold
        self.min_shot_s = min_shot_s
        self._prev: np.ndarray | None = None
        self._shot_start = 0.0

    def starts_shot(self, thumb: np.ndarray, t: float) -> bool:
        """True when the frame with thumbnail ``thumb`` at time ``t`` opens a new shot."""
        prev, self._prev = self._prev, thumb
        if prev is None:
            self._shot_start = t
            return True
        if t - self._shot_start < self.min_shot_s:
            return False
        if thumb_difference(prev, thumb) > self.threshold:
            self._shot_start = t
            return True
        return False


def cut_points(thumbs: np.ndarray, times: np.ndarray, threshold: float = THRESHOLD,
               min_shot_s: float = MIN_SHOT_S) -> np.ndarray:
    """Frame indices where shots start (the first is always 0); plain loop, for tests."""
    cutter = ShotCutter(threshold, min_shot_s)
    return np.array([i for i in range(len(thumbs)) if cutter.starts_shot(thumbs[i], times[i])],
                    dtype=np.int64)
