"""MinAtar observations as the Q-network takes them (channel-first 0/1 uint8 grids), and its
frames as a GIF takes them.

MinAtar's gymnasium envs (``minatar.gym``, Young & Tian 2019) return (10, 10, C) bool grids,
channels last, one channel per kind of object. Torch's convolutions take channels first, and
SB3's buffers and VecEnvs handle uint8 (a quarter of float32's bytes in a 100k replay) better
than bool. The values stay 0 and 1: the space is bounded by 1, so SB3 does not divide it by 255
(it does so only for uint8 Boxes bounded by 255) and the network sees 0/1 floats.

gymnasium 1.x has no transposing wrapper; :func:`channels_first` is its ``TransformObservation``
with a named (picklable) function.

MinAtar's ``rgb_array`` frames are 10x10 float arrays in [0, 1]; :class:`RgbFrames` makes them
the uint8 images, one block of pixels per cell, that a GIF (``eval.gif``) is made of.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import TransformObservation


def to_channels_first(grid: np.ndarray) -> np.ndarray:
    """A (H, W, C) 0/1 grid (bool or any number type) as a contiguous (C, H, W) uint8 array.

    :param grid: one observation, channels last
    :return: the same values, channels first
    """
    return np.ascontiguousarray(np.moveaxis(grid, -1, 0), dtype=np.uint8)


def channels_first(env: gym.Env) -> gym.Env:
    """Wrap a MinAtar env so that it returns (C, H, W) uint8 0/1 grids.

    :param env: an env with (H, W, C) observations in {0, 1}
    :return: the wrapped env, observation space ``Box(0, 1, (C, H, W), uint8)``
    """
    space = env.observation_space
    if not isinstance(space, spaces.Box) or len(space.shape) != 3:
        raise ValueError(f"channels_first needs (H, W, C) grid observations, got {space}")
    height, width, channels = space.shape
    grid = spaces.Box(0, 1, (channels, height, width), np.uint8)
    return TransformObservation(env, to_channels_first, grid)


class RgbFrames(gym.Wrapper):
    """``render()`` returns uint8 RGB images with each grid cell drawn as ``scale`` x ``scale``
    pixels.

    :param env: a MinAtar env (its ``render()`` gives (H, W, 3) floats in [0, 1])
    :param scale: pixels per cell side
    """

    def __init__(self, env: gym.Env, scale: int = 16) -> None:
        super().__init__(env)
        self.scale = scale

    def render(self) -> np.ndarray | None:
        """The current frame as (H * scale, W * scale, 3) uint8, or None where the env has none.

        :return: the frame
        """
        frame = self.env.render()
        if frame is None:
            return None
        pixels = np.rint(np.asarray(frame, dtype=np.float64) * 255).astype(np.uint8)
        return pixels.repeat(self.scale, axis=0).repeat(self.scale, axis=1)
