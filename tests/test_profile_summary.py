"""experiments.profile_summary: py-spy stacks land in the right phase of the loop."""

from experiments.profile_summary import OTHER, phase_of, summarise, table

TRAIN = "main (run.py:23);DQN.learn (dqn.py:275);TargetDQN.train (custom/dqn.py:127)"


def test_a_stack_goes_to_its_most_specific_phase() -> None:
    step = f"{TRAIN};TargetDQN._gradient_step (custom/dqn.py:165)"
    assert phase_of(f"{step};Tensor.backward (torch/_tensor.py:623)") == "update: backward"
    assert phase_of(f"{step};TargetDQN.next_state_values (custom/dqn.py:112)") == (
        "update: target network forward"
    )
    assert phase_of(step) == "update: online forward and loss"
    assert phase_of(f"{TRAIN};FrameStackReplayBuffer.sample (custom/buffers.py:1)") == (
        "replay: sample"
    )
    assert phase_of("main (run.py:23);import_module (importlib:1)") == OTHER


def test_summary_sums_counts_and_shares_add_up() -> None:
    lines = [f"{TRAIN};Tensor.backward (t.py:1) 3", "main (run.py:1) 1", "", f"{TRAIN} 4"]
    samples = summarise(lines)
    assert samples == {"update: backward": 3, OTHER: 1, "training loop, other": 4}
    rows = table(samples)
    assert "| update: backward | 37.5 % |" in rows and rows[-1] == "| (samples) | 8 |"
