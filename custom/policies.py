"""DQN policies with an optional dueling head and an optional reference or MinAtar Q-network.

Dueling: ``Q(s, a) = V(s) + A(s, a) - mean_b A(s, b)`` (Wang et al., 2016): a value stream and
an advantage stream on the shared features; subtracting the mean advantage makes V and A
identifiable.

Reference network: the Keras Q-network of the reference Breakout agent (seed 000), as
:class:`ReferenceCNN` (three bias-free He-normal convolutions and a Glorot dense layer of 512)
plus a Glorot-initialised output layer. It differs from SB3's ``NatureCNN`` head only in its
initialisers and the convolutions' missing biases.

MinAtar network: the Q-network of Young & Tian (2019), MinAtar's ``examples/dqn.py``, as
:class:`MinAtarCNN` (one 3x3 convolution of 16 channels, stride 1, and a dense layer of 128,
ReLU after each) plus a linear output layer, all with torch's default initialisation as there.
The Nature CNN's first 8x8 stride-4 convolution leaves nothing of a 10x10 MinAtar grid.

How to select them: the policies here are SB3's DQN policies plus two keyword arguments,
``dueling: bool = False`` and ``network: str = "sb3"`` (``"sb3"``: SB3's NatureCNN / MLP
features; ``"reference"``: the reference network; ``"minatar"``: the MinAtar network).
:class:`custom.dqn.TargetDQN` (and so every algorithm in :mod:`custom.dqn`) resolves the
usual policy names ``"MlpPolicy"``, ``"CnnPolicy"`` and ``"MultiInputPolicy"`` to them, so
either is just a policy keyword::

    DoubleDQN("CnnPolicy", env, policy_kwargs=dict(network="reference", dueling=True))

In a Hydra config that is ``policy_kwargs: {network: reference, dueling: true}``. With the
defaults the network is SB3's own ``QNetwork``, built identically, so nothing changes. Stock
SB3 ``DQN`` can use them too by passing the class: ``DQN(QPolicy, env,
policy_kwargs=dict(dueling=True))``.
"""

import math
from typing import Any, ClassVar, cast

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn
from torch.nn import functional as F

NETWORKS = ("sb3", "reference", "minatar")
"""Values of the policy keyword ``network``."""

#: The smallest image side the reference network's three convolutions (8/4, 4/2, 3/1) accept.
REFERENCE_MIN_SIDE = 36


def he_normal_(weight: th.Tensor) -> None:
    """Keras' ``VarianceScaling(2.0, "fan_in", "untruncated_normal")``: N(0, 2 / fan_in).

    :param weight: a convolution or linear weight, filled in place
    """
    fan_in = weight[0].numel()  # in_channels * kernel height * kernel width, as Keras counts
    nn.init.normal_(weight, std=math.sqrt(2.0 / fan_in))


def glorot_uniform_(layer: nn.Linear) -> None:
    """Keras' ``Dense`` defaults: kernel U(+-sqrt(6 / (fan_in + fan_out))), zero bias.

    :param layer: the layer, re-initialised in place
    """
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)


class ReferenceCNN(BaseFeaturesExtractor):
    """The reference agent's convolutional torso and dense layer, initialised as in Keras.

    Conv 32x8x8/4, 64x4x4/2, 64x3x3/1, all without biases and He-normal; ReLU after each;
    flatten; dense ``features_dim`` (512) with ReLU, Glorot-uniform with a zero bias. Input
    scaling by 1/255 is the policy's (SB3's ``normalize_images``), as for ``NatureCNN``.

    :param observation_space: a channel-first image space (C, H, W)
    :param features_dim: width of the dense layer
    :param normalized_image: whether images are already in [0, 1] (skips SB3's dtype check)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        features_dim: int = 512,
        normalized_image: bool = False,
    ) -> None:
        if isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3:
            side = min(observation_space.shape[1:])
            if side < REFERENCE_MIN_SIDE:
                raise ValueError(
                    f"network='reference' needs images of at least {REFERENCE_MIN_SIDE}x"
                    f"{REFERENCE_MIN_SIDE} (its convolutions 8/4, 4/2, 3/1), got "
                    f"{observation_space.shape[1]}x{observation_space.shape[2]}; on MinAtar "
                    "use network=minatar"
                )
        if not isinstance(observation_space, spaces.Box) or not is_image_space(
            observation_space, check_channels=False, normalized_image=normalized_image
        ):
            raise ValueError(
                "network='reference' needs image observations, a uint8 Box (C, H, W); "
                f"got {observation_space}"
            )
        super().__init__(observation_space, features_dim)
        self.cnn = nn.Sequential(
            nn.Conv2d(observation_space.shape[0], 32, kernel_size=8, stride=4, bias=False),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2, bias=False),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1, bias=False),
            nn.ReLU(),
            nn.Flatten(),
        )
        with th.no_grad():
            n_flatten = self.cnn(th.zeros(1, *observation_space.shape)).shape[1]
        for module in self.cnn:
            if isinstance(module, nn.Conv2d):
                he_normal_(module.weight)
        dense = nn.Linear(n_flatten, features_dim)
        glorot_uniform_(dense)
        self.linear = nn.Sequential(dense, nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """Features of scaled images, (batch, features_dim).

        :param observations: images, (batch, C, H, W), already divided by 255
        :return: features
        """
        return self.linear(self.cnn(observations))


class MinAtarCNN(BaseFeaturesExtractor):
    """Young & Tian's (2019) MinAtar torso: conv 16x3x3/1, ReLU, flatten, dense 128, ReLU.

    MinAtar observations are 0/1 grids, one channel per kind of object, so they are used as
    they are: no division by 255 (SB3 divides only uint8 Boxes bounded by 255, and a MinAtar
    space is bounded by 1).

    :param observation_space: a channel-first grid (C, H, W), at least 3x3
    :param features_dim: width of the dense layer (128 in the paper)
    """

    def __init__(self, observation_space: spaces.Space, features_dim: int = 128) -> None:
        shape = observation_space.shape
        if not isinstance(observation_space, spaces.Box) or shape is None or len(shape) != 3:
            raise ValueError(
                "network='minatar' needs channel-first grid observations, a Box (C, H, W); "
                f"got {observation_space}"
            )
        if min(shape[1:]) < 3:
            raise ValueError(f"network='minatar' needs grids of at least 3x3, got {shape}")
        super().__init__(observation_space, features_dim)
        channels, height, width = shape
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.linear = nn.Sequential(
            nn.Linear(16 * (height - 2) * (width - 2), features_dim), nn.ReLU()
        )

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """Features of 0/1 grids, (batch, features_dim).

        The layers' own functions on their parameters, not the modules called one by one: the
        same operations, without the per-module call that is a visible part of so small a
        network's update (docs/benchmarks/minatar_throughput.md).

        :param observations: grids, (batch, C, H, W), as floats
        :return: features
        """
        conv, dense = cast(nn.Conv2d, self.cnn[0]), cast(nn.Linear, self.linear[0])
        grids = F.relu(F.conv2d(observations, conv.weight, conv.bias)).flatten(1)
        return F.relu(F.linear(grids, dense.weight, dense.bias))


#: ``network`` -> the features extractor it builds (``"sb3"`` keeps the policy's own).
_EXTRACTORS: dict[str, type[BaseFeaturesExtractor]] = {
    "reference": ReferenceCNN,
    "minatar": MinAtarCNN,
}


def init_reference_head_(q_net: QNetwork) -> None:
    """Glorot-initialise every linear layer after the features extractor (the Q head).

    :param q_net: a ``QNetwork`` or ``DuelingQNetwork``, re-initialised in place
    """
    in_extractor = set(q_net.features_extractor.modules())
    for module in q_net.modules():
        if isinstance(module, nn.Linear) and module not in in_extractor:
            glorot_uniform_(module)


def check_policy_keywords(dueling: object, network: object, channels_last: object = False) -> None:
    """Reject a non-bool ``dueling`` or ``channels_last`` and an unknown ``network``, naming it.

    A bool check, not truthiness: Hydra passes ``+dqn.policy_kwargs.dueling=no`` as the string
    ``"no"``, which is truthy and would silently build a dueling network.

    :param dueling: the ``dueling`` policy keyword
    :param network: the ``network`` policy keyword
    :param channels_last: the ``channels_last`` policy keyword
    """
    for name, value in (("dueling", dueling), ("channels_last", channels_last)):
        if not isinstance(value, bool):
            raise TypeError(
                f"policy keyword {name} must be True or False, got {value!r} "
                f"({type(value).__name__}); in a Hydra override write {name}=true or {name}=false"
            )
    if network not in NETWORKS:
        raise ValueError(
            f"policy keyword network must be one of {', '.join(map(repr, NETWORKS))}; "
            f"got {network!r}"
        )


def network_layout(
    network: str,
    features_extractor_class: type[BaseFeaturesExtractor] | None,
    net_arch: list[int] | None,
) -> tuple[type[BaseFeaturesExtractor], list[int]]:
    """Extractor and head layers of a published network; refuses anything that changes them.

    Both published networks end in a dense layer and the output layer, so the head is the
    output layer alone (of each stream when dueling).

    :param network: ``"reference"`` or ``"minatar"``
    :param features_extractor_class: None or the network's own (what a saved policy passes)
    :param net_arch: None or [] (the head is the output layer alone)
    :return: ``(its extractor class, [])``
    """
    extractor = _EXTRACTORS[network]
    if features_extractor_class not in (None, extractor):
        raise ValueError(
            f"network={network!r} builds its own features extractor: drop "
            f"features_extractor_class={features_extractor_class!r}"
        )
    if net_arch:
        raise ValueError(
            f"network={network!r} has a fixed head (the output layer after its dense layer): "
            f"drop net_arch={net_arch!r}"
        )
    return extractor, []


class ChannelsLastInput:
    """Forward pre-hook of a Q-network with channels-last weights: its batch of images goes in
    channels-last too, and, for uint8 images, already scaled to [0, 1].

    Otherwise each convolution converts its float input (forward, and again for the weight
    gradient), which costs about a tenth of a Breakout update. Here the uint8 batch changes
    layout (a quarter of the bytes), is converted to float and divided in place:
    ``obs.float() / 255`` as SB3's ``preprocess_obs`` computes it, value for value, which the
    network then skips (its ``normalize_images`` is turned off where this hook scales).

    :param scale: divide by 255 here (uint8 images that the network would normalise)
    """

    def __init__(self, scale: bool) -> None:
        self.scale = scale

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        obs = args[0]
        if not (isinstance(obs, th.Tensor) and obs.dim() == 4):
            return None
        if not obs.is_contiguous(memory_format=th.channels_last):
            # The channels as the last axis, stacked: faster than torch's permuting copy
            # (``contiguous(memory_format=...)``) for a few uint8 channels
            # (docs/benchmarks/figures.md).
            obs = th.stack(obs.unbind(1), dim=-1).permute(0, 3, 1, 2)
        if self.scale:  # keeps the layout; never divides the caller's own float tensor in place
            obs = obs.float() / 255.0 if obs.is_floating_point() else obs.float().div_(255.0)
        return (obs, *args[1:])


class LeanQNetwork(QNetwork):
    """SB3's ``QNetwork``, the same layers and function, with its input check done once.

    SB3's ``extract_features`` asks ``is_image_space`` of the observation space on every
    forward pass, which costs about as much as a small network's layers; the space does not
    change, so here the answer is kept. ``normalize_images`` is still read at every call
    (:class:`ChannelsLastInput` turns it off after construction).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        space = self.observation_space
        self._box = isinstance(space, spaces.Box)
        self._image = self._box and is_image_space(space)

    def extract_features(
        self, obs: PyTorchObs, features_extractor: BaseFeaturesExtractor
    ) -> th.Tensor:
        """``preprocess_obs`` then the features extractor, as SB3's, value for value.

        :param obs: observations, batched
        :param features_extractor: the network's features extractor
        :return: features
        """
        if not (self._box and isinstance(obs, th.Tensor)):
            return super().extract_features(obs, features_extractor)
        if self._image and self.normalize_images:
            return features_extractor(obs.float() / 255.0)
        return features_extractor(obs.float())


class DuelingQNetwork(LeanQNetwork):
    """Q-network with separate value and advantage streams on shared features.

    :param observation_space: observation space
    :param action_space: action space
    :param features_extractor: the shared features extractor
    :param features_dim: number of features it outputs
    :param net_arch: hidden layers of *each* stream (SB3's default: [64, 64])
    :param activation_fn: activation function
    :param normalize_images: whether to divide images by 255
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor,
            features_dim,
            net_arch,
            activation_fn,
            normalize_images,
        )
        # The parent's single head is replaced by the two streams.
        del self.q_net
        n_actions = int(self.action_space.n)
        self.value_stream = nn.Sequential(
            *create_mlp(features_dim, 1, self.net_arch, activation_fn)
        )
        self.advantage_stream = nn.Sequential(
            *create_mlp(features_dim, n_actions, self.net_arch, activation_fn)
        )

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """Q-values ``V + A - mean(A)``, shape (batch, n_actions).

        :param obs: observations, batched
        :return: Q-values
        """
        features = self.extract_features(obs, self.features_extractor)
        advantages = self.advantage_stream(features)
        return self.value_stream(features) + advantages - advantages.mean(dim=1, keepdim=True)


class QPolicy(DQNPolicy):
    """SB3's ``DQNPolicy`` (MLP features by default), optionally dueling or the reference network.

    :param observation_space: observation space
    :param action_space: action space
    :param lr_schedule: learning rate schedule
    :param net_arch: hidden layers of the head (of each stream when dueling)
    :param activation_fn: activation function
    :param features_extractor_class: features extractor to use; None: the policy's default
        (``default_features_extractor_class``), or :class:`ReferenceCNN` for the reference network
    :param features_extractor_kwargs: keyword arguments for the features extractor
    :param normalize_images: whether to divide images by 255
    :param optimizer_class: optimizer class
    :param optimizer_kwargs: optimizer keyword arguments, excluding the learning rate
    :param dueling: use :class:`DuelingQNetwork` instead of SB3's ``QNetwork`` (a bool)
    :param network: ``"sb3"`` (SB3's features and head, as configured), ``"reference"``
        (:class:`ReferenceCNN` and a Glorot-initialised output layer) or ``"minatar"``
        (:class:`MinAtarCNN` and an output layer); the last two take no ``net_arch``
    :param channels_last: store the convolution weights channels-last (NHWC) and feed them
        images in that layout (:class:`ChannelsLastInput`), so that the convolutions and their
        gradients run in it: the same function to float rounding, and on a CPU a faster
        Breakout update (oneDNN's NCHW weight gradient is slow; ``python -m
        benchmarks.compiled_update``). No effect without convolutions.
    """

    default_features_extractor_class: ClassVar[type[BaseFeaturesExtractor]] = FlattenExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        dueling: bool = False,
        network: str = "sb3",
        channels_last: bool = False,
    ) -> None:
        check_policy_keywords(dueling, network, channels_last)
        if network in _EXTRACTORS:
            features_extractor_class, net_arch = network_layout(
                network, features_extractor_class, net_arch
            )
        elif features_extractor_class is None:
            features_extractor_class = self.default_features_extractor_class
        # Set before the parent's __init__, which builds the networks.
        self.dueling = dueling
        self.network = network
        self.channels_last = channels_last
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
        )

    def make_q_net(self) -> QNetwork:
        """Build an online or target network (a fresh features extractor each time).

        :return: a :class:`DuelingQNetwork` when ``dueling``, else a :class:`LeanQNetwork`
            (SB3's ``QNetwork``); with the reference network, its head Glorot-initialised
        """
        # A fresh features extractor for each network, as SB3's make_q_net
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        network_class = DuelingQNetwork if self.dueling else LeanQNetwork
        q_net: QNetwork = network_class(**net_args).to(self.device)
        if self.network == "reference":
            init_reference_head_(q_net)
        if self.channels_last:
            # Only 4-d tensors change layout; values, and state_dict copies in and out, do not.
            q_net.to(memory_format=th.channels_last)  # type: ignore[call-overload]  # not in the stubs
            scale = q_net.normalize_images and is_image_space(self.observation_space)
            q_net.normalize_images = not scale  # the hook scales, in the pass that converts
            q_net.register_forward_pre_hook(ChannelsLastInput(scale))
        return q_net

    def _get_constructor_parameters(self) -> dict[str, Any]:
        # What SB3's save() stores and load() passes back to __init__.
        return {
            **super()._get_constructor_parameters(),
            "dueling": self.dueling,
            "network": self.network,
            "channels_last": self.channels_last,
        }


class CnnQPolicy(QPolicy):
    """:class:`QPolicy` with SB3's Nature CNN features, for image observations.

    Same parameters as :class:`QPolicy`; only the default feature extractor differs.
    """

    default_features_extractor_class = NatureCNN


class MultiInputQPolicy(QPolicy):
    """:class:`QPolicy` with SB3's combined extractor, for dict observations.

    Same parameters as :class:`QPolicy`; only the default feature extractor differs.
    """

    default_features_extractor_class = CombinedExtractor


POLICY_ALIASES: dict[str, type[BasePolicy]] = {
    "MlpPolicy": QPolicy,
    "CnnPolicy": CnnQPolicy,
    "MultiInputPolicy": MultiInputQPolicy,
}
"""SB3's policy names mapped to the policies here (``TargetDQN.policy_aliases``)."""
