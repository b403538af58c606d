"""Shared fixtures: composed configs, quiet and offline W&B, one torch thread per worker."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import torch
from omegaconf import DictConfig

from experiments import config

# Tests never reach the network: W&B is disabled unless a test turns offline mode on itself.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
torch.set_num_threads(1)
config.register_configs()

ComposeFn = Callable[..., DictConfig]


@pytest.fixture
def compose_config() -> Iterator[ComposeFn]:
    """``compose_config("env=frozenlake", ...)`` -> the config ``run.py`` would get."""

    def _compose(*overrides: str) -> DictConfig:
        return config.compose_config(overrides)

    yield _compose
