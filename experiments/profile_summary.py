"""Where a training run's time goes: py-spy's raw samples summed into the phases of DQN's loop.

    py-spy record --format raw --rate 50 -o profile.txt -- \\
        python run.py env=breakout dqn.learning_starts=1000 total_timesteps=3000 ...
    python -m experiments.profile_summary profile.txt

Each sample's call stack is put in the first phase whose marker it contains, from the most
specific (the gradient step's parts) to the most general (the rollout loop); what matches no
phase is start-up and shutdown (imports, env and network construction, W&B, the final
evaluation). Shares are of all samples of the process. The phases are TargetDQN's
(custom/dqn.py): profile run.py, not stock SB3, whose DQN.train has no such parts.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

#: (phase, markers): a stack belongs to the first phase with a marker in it.
PHASES: list[tuple[str, tuple[str, ...]]] = [
    ("update: compilation (first step)", ("_first_compiled_step",)),
    ("update: backward", ("Tensor.backward",)),
    ("update: optimizer step", ("Optimizer.profile_hook_step", "_single_tensor_adam")),
    ("update: gradient clipping", ("clip_grad_norm_",)),
    ("update: target network forward", ("next_state_values",)),
    ("update: online forward and loss", ("_gradient_step",)),
    ("replay: sample", ("Buffer.sample", "Buffer._get_samples")),
    ("replay: store", ("_store_transition",)),
    ("acting: choose action", ("_sample_action",)),
    ("env: step", ("VecEnv.step", "DummyVecEnv.step_wait", "step_wait")),
    ("callbacks and logging", ("on_step", "dump_logs", "_on_step", "update_locals")),
    ("training loop, other", ("collect_rollouts", "OffPolicyAlgorithm.train", "TargetDQN.train")),
    ("evaluation", ("PeriodicEvaluation", "evaluate_policy", "play_games")),
]
OTHER = "start-up, shutdown and other"


def phase_of(stack: str) -> str:
    """The phase of one ``;``-joined call stack."""
    for phase, markers in PHASES:
        if any(marker in stack for marker in markers):
            return phase
    return OTHER


def summarise(lines: list[str]) -> Counter[str]:
    """Samples per phase from py-spy's raw format: ``frame;frame;... count`` per line."""
    samples: Counter[str] = Counter()
    for line in lines:
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        samples[phase_of(stack)] += int(count)
    return samples


def table(samples: Counter[str]) -> list[str]:
    """Markdown rows, phases in loop order, with each phase's share of all samples."""
    total = sum(samples.values())
    order = [phase for phase, _ in PHASES] + [OTHER]
    rows = ["| phase | share of samples |", "|---|---:|"]
    rows += [f"| {p} | {100 * samples[p] / total:.1f} % |" for p in order if samples[p]]
    rows.append(f"| (samples) | {total} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    args = parser.parse_args()
    print("\n".join(table(summarise(args.profile.read_text().splitlines()))))


if __name__ == "__main__":
    main()
