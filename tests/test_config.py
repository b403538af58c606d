"""Every env x algo pair composes, validates and instantiates; bad values are refused.

Listings (envs, algorithms, presets, hyperparameter files) are read from conf/, so a new file
there is picked up without editing this test.
"""

from __future__ import annotations

import pytest
from omegaconf import DictConfig, OmegaConf

from experiments.algos import ALGORITHMS, FAMILIES, build_model
from experiments.config import CONF_DIR, config_warnings, run_config, validate
from experiments.envs import make_env
from experiments.errors import ConfigError

ENVS = sorted(path.stem for path in (CONF_DIR / "env").glob("*.yaml"))
ALGOS = sorted(path.stem for path in (CONF_DIR / "algo").glob("*.yaml"))
EXPERIMENTS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))


def test_the_three_envs_and_every_registered_algo_have_a_config() -> None:
    assert {"frozenlake", "cartpole", "breakout", "pong"} <= set(ENVS)
    assert set(ALGOS) == set(ALGORITHMS)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("env", ENVS)
def test_every_env_has_hyperparameters_for_every_family(env: str, family: str) -> None:
    assert (CONF_DIR / "hparams" / family / f"{env}.yaml").is_file()


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("env", ENVS)
def test_every_env_algo_pair_composes_and_instantiates(compose_config, env: str, algo: str) -> None:
    spec = ALGORITHMS[algo]
    small = ("dqn.buffer_size=1000",) if spec.family == "dqn" else ()
    cfg = compose_config(f"env={env}", f"algo={algo}", *small)
    validate(cfg)
    vec_env = make_env(cfg, training=True)
    try:
        model = build_model(cfg, vec_env)
        assert type(model) is spec.cls
        assert model.get_env() is not None
    finally:
        vec_env.close()


@pytest.mark.parametrize("algo", ALGOS)
def test_a_run_carries_only_its_own_family_block(compose_config, algo: str) -> None:
    family = ALGORITHMS[algo].family
    saved = run_config(compose_config(f"algo={algo}"))
    assert family in saved
    for other in set(FAMILIES) - {family}:
        assert other not in saved


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_preset_composes(compose_config, experiment: str) -> None:
    validate(compose_config(f"experiment={experiment}"))


def test_defaults_are_cartpole_dqn_50k_steps(compose_config) -> None:
    cfg = compose_config()
    assert (cfg.env.name, cfg.algo.name, cfg.total_timesteps) == ("cartpole", "dqn", 50_000)
    assert cfg.device == "auto"


def test_env_file_sets_its_budget_and_the_family_file_its_hyperparameters(compose_config) -> None:
    cfg = compose_config("env=frozenlake")
    assert cfg.total_timesteps == 100_000
    assert cfg.eval.final_episodes == 1000
    assert cfg.dqn.policy_kwargs.net_arch == []
    assert compose_config("env=frozenlake", "algo=ppo").ppo.policy_kwargs.net_arch == []


def test_command_line_beats_config_files(compose_config) -> None:
    cfg = compose_config("env=frozenlake", "total_timesteps=123", "dqn.batch_size=7")
    assert (cfg.total_timesteps, cfg.dqn.batch_size) == (123, 7)


def test_value_that_depends_on_algo_and_env_has_its_own_file(compose_config) -> None:
    assert compose_config("algo=softmax").algo.kwargs.temperature == 0.001
    assert compose_config("algo=softmax", "env=breakout").algo.kwargs.temperature == 5e-5
    assert compose_config("algo=softmax", "env=pong").algo.kwargs.temperature == 5e-5
    cfg = compose_config("algo=softmax", "env=breakout", "algo.kwargs.temperature=0.1")
    assert cfg.algo.kwargs.temperature == 0.1


def test_pong_reuses_breakouts_setup(compose_config) -> None:
    pong = compose_config("env=pong")
    breakout = compose_config("env=breakout")
    assert pong.env.id == "ALE/Pong-v5"
    assert pong.dqn == breakout.dqn
    differing = {
        key
        for key, value in pong.env.wrapper_kwargs.items()
        if breakout.env.wrapper_kwargs[key] != value
    }
    assert differing == {"max_episode_steps"}


#: Every value of the reference Breakout agent (shared/seeds/000) that the preset reproduces.
REFERENCE = {
    "env.id": "ALE/Breakout-v5",
    "env.wrapper": "atari",
    "env.wrapper_kwargs.history": 4,
    "env.wrapper_kwargs.history_reset": "first",
    "env.wrapper_kwargs.life_loss_terminal": True,
    "env.wrapper_kwargs.life_loss_reward": -1.0,
    "env.wrapper_kwargs.fire_on_life_loss": True,
    "env.wrapper_kwargs.max_episode_steps": 2500,
    "env.wrapper_kwargs.noop_max": 0,
    "env.wrapper_kwargs.clip_reward": False,
    "env.wrapper_kwargs.max_pool": False,
    "env.wrapper_kwargs.frameskip": 4,
    "total_timesteps": 2_500_000,
    "eval.freq": 200_000,
    "eval.episodes": 100,
    "eval.epsilon": 0.0,
    "eval.gif": True,
    "dqn.learning_rate": 1e-5,
    "dqn.learning_rate_final": None,
    "dqn.buffer_size": 1_000_000,
    "dqn.learning_starts": 50_000,
    "dqn.batch_size": 32,
    "dqn.gamma": 0.99,
    "dqn.train_freq": 2,
    "dqn.gradient_steps": 1,
    "dqn.target_update_interval": 312,
    "dqn.exploration_initial_eps": 1.0,
    "dqn.exploration_final_eps": 0.1,
    "dqn.exploration_hold_steps": 300_000,
    "dqn.exploration_anneal_steps": 900_000,
    "dqn.policy_kwargs.optimizer_kwargs.eps": 1e-8,
    "dqn.policy_kwargs.network": "reference",
    "dqn.loss": "reference",
    "dqn.replay.kind": "frames",
}


@pytest.mark.parametrize("algo", ["dqn", "expected_sarsa", "softmax"])
def test_breakout_reference_preset_holds_every_reference_value(compose_config, algo) -> None:
    cfg = compose_config("experiment=breakout_reference", f"algo={algo}")
    actual = {key: OmegaConf.select(cfg, key) for key in REFERENCE}
    assert actual == REFERENCE
    if algo == "softmax":
        assert cfg.algo.kwargs.temperature == 5e-5


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("total_timesteps=0", "total_timesteps"),
        ("total_timesteps=-5", "total_timesteps"),
        ("seed=-1", "seed"),
        ("dqn.learning_rate=-0.1", "dqn.learning_rate"),
        ("dqn.learning_rate_final=0", "dqn.learning_rate_final"),
        ("dqn.gamma=0", "dqn.gamma"),
        ("dqn.gamma=1.01", "dqn.gamma"),
        ("dqn.exploration_final_eps=1.5", "dqn.exploration_final_eps"),
        ("dqn.gradient_steps=0", "dqn.gradient_steps"),
        ("eval.episodes=0", "eval.episodes"),
        ("eval.freq=-1", "eval.freq"),
        ("device=tpu", "device"),
        ("logger.mode=sometimes", "logger.mode"),
        ("torch_threads=0", "torch_threads"),
        ("logger.backend=tensorboard", "logger.backend"),
        ("logger.project=a/b", "logger.project"),
        ("env.id=CartPol-v1", "env.id"),
        ("+dqn.policy_kwargs.dueling=no", "dqn.policy_kwargs.dueling"),
        ("+dqn.policy_kwargs.nope=1", "dqn.policy_kwargs.nope"),
        ("dqn.policy_kwargs.net_arch=[-1]", "dqn.policy_kwargs.net_arch"),
        ("dqn.policy_kwargs.net_arch=[64,0]", "dqn.policy_kwargs.net_arch"),
        ("dqn.policy_kwargs.net_arch=[a]", "dqn.policy_kwargs.net_arch"),
        ("dqn.replay.kind=frames", "dqn.replay.kind"),
        ("+algo.kwargs.temperature=0.1", "algo.kwargs.temperature"),
    ],
)
def test_bad_values_name_the_key(compose_config, override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}[=:]"):
        validate(compose_config(override))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("algo=ppo", "ppo.gamma=2"), r"^ppo.gamma=2.0: must be in \(0, 1\]$"),
        (
            ("algo=softmax", "algo.kwargs.temperature=0"),
            r"^algo.kwargs.temperature=0: must be > 0$",
        ),
        (
            ("algo=softmax", "algo.kwargs.temperature=abc"),
            r"^algo.kwargs.temperature=abc: Value 'abc'",
        ),
        (("family=ppo",), r"^ppo\.batch_size=256: this run has no such block: algo=dqn takes dqn"),
        (("algo=ppo", "dqn.replay.prioritized=true"), r"^dqn\.replay\.prioritized=True: this run"),
        # torch checks these two together only when it builds the optimizer, by a RuntimeError
        (
            ("+dqn.policy_kwargs.optimizer_kwargs.foreach=true",),
            r"^dqn\.policy_kwargs\.optimizer_kwargs=\{'fused': True, 'foreach': True\}: Adam "
            r"refuses it: `fused` and `foreach` cannot be `True` together",
        ),
        (
            (
                "algo=ppo",
                "+ppo.policy_kwargs.optimizer_kwargs.foreach=true",
                "+ppo.policy_kwargs.optimizer_kwargs.fused=true",
            ),
            r"^ppo\.policy_kwargs\.optimizer_kwargs=.*: Adam refuses it: `fused` and `foreach`",
        ),
        (
            ("algo=ppo", "+ppo.policy_kwargs.features_extractor_class=NatureCNN"),
            r"^ppo\.policy_kwargs\.features_extractor_class=NatureCNN: takes a Python class, .* "
            r"as PPO\(\.\.\., policy_kwargs=\{'features_extractor_class': <class>\}\)$",
        ),
    ],
)
def test_algorithm_specific_values_are_checked(compose_config, overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(compose_config(*overrides))


def test_gamma_of_one_is_allowed(compose_config) -> None:
    validate(compose_config("dqn.gamma=1.0"))


def _is_valid(cfg: DictConfig) -> bool:
    try:
        validate(cfg)
    except ConfigError:
        return False
    return True


def test_cuda_device_is_allowed_exactly_when_torch_sees_a_gpu(compose_config) -> None:
    import torch

    assert _is_valid(compose_config("device=cuda:1")) == torch.cuda.is_available()
    assert _is_valid(compose_config("device=cpu"))


def test_frame_buffer_refuses_history_resets_inside_an_episode(compose_config) -> None:
    cfg = compose_config("env=breakout", "env.wrapper_kwargs.life_loss_terminal=false")
    with pytest.raises(ConfigError, match=r"^dqn.replay.kind=frames: needs .*life_loss_terminal"):
        validate(cfg)
    validate(
        compose_config(
            "env=breakout",
            "env.wrapper_kwargs.life_loss_terminal=false",
            "dqn.replay.kind=standard",
        )
    )


@pytest.mark.parametrize("value", ["", "sometimes"])
def test_bad_wandb_mode_environment_variable_is_one_line(
    compose_config, monkeypatch, value
) -> None:
    monkeypatch.setenv("WANDB_MODE", value)
    with pytest.raises(ConfigError, match=rf"^the environment variable WANDB_MODE='{value}'"):
        validate(compose_config())
    validate(compose_config("logger=none"))  # no W&B, nothing to complain about


def test_a_run_without_gradient_steps_is_a_loud_warning_not_an_error(compose_config) -> None:
    cfg = compose_config("env=pong", "total_timesteps=2000")  # learning starts at 50k
    validate(cfg)
    (warning,) = config_warnings(cfg)
    assert warning.startswith("dqn.learning_starts=50000 is not below total_timesteps=2000")
    assert config_warnings(compose_config()) == []
