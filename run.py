"""Train one agent, or sweep many with -m: ``python run.py env=breakout algo=expected_sarsa``.

Config groups and keys: ``python run.py --help``; the configs themselves live in ``conf/``.
A bad override or value ends with one line, ``error: <key>: <what is wrong>``, and exit code 1
(``HYDRA_FULL_ERROR=1`` shows the traceback).
"""

import sys

import hydra
from omegaconf import DictConfig

from experiments.checkpoints import with_resumed_choices
from experiments.cli import one_line_errors, run_reporting_errors
from experiments.config import register_configs
from experiments.sweeps import run_job
from experiments.train import train

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Train; return the final evaluation mean, the value an Optuna sweep maximises."""
    with one_line_errors():
        return run_job(cfg, train)


if __name__ == "__main__":
    sys.argv[1:] = with_resumed_choices(sys.argv[1:])
    run_reporting_errors(main)
