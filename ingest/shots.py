"""Shot cutting by a documented frame-difference rule.

Rule: with ``d_i`` the mean absolute difference between the ``CUT_SIDE`` x
``CUT_SIDE`` RGB thumbnails of frames ``i - 1`` and ``i`` (values in [0, 1]),
a new shot starts at frame ``i`` when the current shot is at least
``min_shot_s`` long and either ``d_i > threshold`` (a jump to a different
picture), or ``d_i > min_diff`` and ``d_i > ratio * d_{i-1}`` (a jump much
larger than the motion just before it: a cut between two pictures of similar
overall tone, such as two textures). A camera move changes a coarse thumbnail
steadily from frame to frame, so its ``d`` stays near its previous value.
Gradual transitions (cross-fades, wipes) are not cuts: they stay in one shot.
"""

from __future__ import annotations

import numpy as np

#: Side of the RGB thumbnail the cut rule compares.
CUT_SIDE = 16
#: Default absolute cut threshold on the mean thumbnail difference.
THRESHOLD = 0.15
#: Default relative rule: cut when d > MIN_DIFF and d > RATIO * previous d.
MIN_DIFF, RATIO = 0.04, 2.2
#: Floor on the previous difference in the relative rule (a still frame has d = 0).
FLOOR = 0.004
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
        Absolute cut threshold (0 < threshold < 1).
    min_shot_s : float
        Ignore a cut less than this many seconds after the shot's start.
    min_diff, ratio : float
        The relative rule (see the module docstring).
    """

    def __init__(self, threshold: float = THRESHOLD, min_shot_s: float = MIN_SHOT_S,
                 min_diff: float = MIN_DIFF, ratio: float = RATIO) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold={threshold}: expected 0 < threshold < 1")
        if min_shot_s < 0:
            raise ValueError(f"min_shot_s={min_shot_s}: expected >= 0")
        if ratio <= 1.0:
            raise ValueError(f"ratio={ratio}: expected > 1")
        self.threshold, self.min_shot_s = threshold, min_shot_s
        self.min_diff, self.ratio = min_diff, ratio
        self._prev: np.ndarray | None = None
        self._prev_d = 0.0
        self._shot_start = 0.0

    def starts_shot(self, thumb: np.ndarray, t: float) -> bool:
        """True when the frame with thumbnail ``thumb`` at time ``t`` opens a new shot."""
        prev, self._prev = self._prev, thumb
        if prev is None:
            self._shot_start = t
            return True
        d, prev_d = thumb_difference(prev, thumb), self._prev_d
        self._prev_d = d
        if t - self._shot_start < self.min_shot_s:
            return False
        if d > self.threshold or (d > self.min_diff and d > self.ratio * max(prev_d, FLOOR)):
            self._shot_start = t
            return True
        return False


def cut_points(thumbs: np.ndarray, times: np.ndarray, threshold: float = THRESHOLD,
               min_shot_s: float = MIN_SHOT_S) -> np.ndarray:
    """Frame indices where shots start (the first is always 0), for a whole sequence."""
    cutter = ShotCutter(threshold, min_shot_s)
    return np.array([i for i in range(len(thumbs)) if cutter.starts_shot(thumbs[i], times[i])],
                    dtype=np.int64)
