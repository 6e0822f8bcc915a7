"""Emotion-classifier architectures in plain ``torch.nn``, registered by name.

Usage::

    model = create_model("vgg_small", num_classes=8)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import ConfigError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make ``fn`` creatable by its name."""
    _REGISTRY[fn.__name__] = fn
    return fn


def architectures() -> list[str]:
    """Names of the architectures ``create_model`` builds (the training registry)."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(architectures())}")
    return _REGISTRY[name](**kwargs)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _PooledHeads(nn.Module):
    """A ``features`` stack, global average pooling and a linear head on it.

    ``aux_classes`` adds a second linear head on the same pooled features (trained on another
    labelling of the same images, e.g. FER2013's original labels); ``forward`` then returns
    ``(logits, aux_logits)``.
    """

    def __init__(self, features: nn.Module, width: int, num_classes: int, dropout: float, aux_classes: int):
        super().__init__()
        self.features = features
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(width, num_classes)
        )
        self.aux_head = nn.Linear(width, aux_classes) if aux_classes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.aux_head is None:
            return self.head(self.features(x))
        pooled = self.head[:-1](self.features(x))  # pool, flatten, dropout: shared by both heads
        return self.head[-1](pooled), self.aux_head(pooled)


class VGGNet(_PooledHeads):
    """VGG-style stack: ``stages[i]`` lists the widths of stage i's convs; 2x2 max-pool between stages."""

    def __init__(
        self,
        stages: list[list[int]],
        num_classes: int = 8,
        in_channels: int = 1,
        dropout: float = 0.3,
        aux_classes: int = 0,
    ):
        layers: list[nn.Module] = []
        cin = in_channels
        for i, stage in enumerate(stages):
            for cout in stage:
                layers.append(_conv_bn(cin, cout))
                cin = cout
            if i < len(stages) - 1:
                layers.append(nn.MaxPool2d(2))
        super().__init__(nn.Sequential(*layers), cin, num_classes, dropout, aux_classes)


class _Residual(nn.Module):
    """ResNet's basic block at a fixed width: relu(x + bn(conv(relu(bn(conv(x))))))."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(width, width), nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.body(x))


class ResNet(_PooledHeads):
    """Plain ``stem`` convs at full size, then stages of one conv to ``widths[i]`` and
    ``blocks[i]`` residual blocks, a 2x2 max-pool before each stage."""

    def __init__(
        self,
        stem: list[int],
        widths: list[int],
        blocks: list[int],
        num_classes: int = 8,
        in_channels: int = 1,
        dropout: float = 0.3,
        aux_classes: int = 0,
    ):
        layers: list[nn.Module] = []
        cin = in_channels
        for cout in stem:
            layers.append(_conv_bn(cin, cout))
            cin = cout
        for width, n in zip(widths, blocks, strict=True):
            layers += [nn.MaxPool2d(2), _conv_bn(cin, width), *(_Residual(width) for _ in range(n))]
            cin = width
        super().__init__(nn.Sequential(*layers), cin, num_classes, dropout, aux_classes)


@register_model
def vgg_small(num_classes: int = 8, in_channels: int = 1, aux_classes: int = 0) -> nn.Module:
    """About 1.2M parameters; 48x48 grey input. The first shipped model."""
    return VGGNet([[32, 32], [64, 64], [128, 128], [256, 256]], num_classes, in_channels, aux_classes=aux_classes)


@register_model
def vgg_deep(num_classes: int = 8, in_channels: int = 1, aux_classes: int = 0) -> nn.Module:
    """About 2.0M parameters; vgg_small's widths at the FER+ paper's VGG13 depth (3 convs in the
    last three stages). 1.7 ms a face on 2 CPU threads: within the live budget."""
    return VGGNet(
        [[32, 32], [64, 64, 64], [128, 128, 128], [256, 256, 256]], num_classes, in_channels, aux_classes=aux_classes
    )


@register_model
def res_deep(num_classes: int = 8, in_channels: int = 1, aux_classes: int = 0) -> nn.Module:
    """About 2.0M parameters; vgg_deep's convs and cost, with a shortcut around the last two
    convs of each of its last three stages (an ensemble member that errs differently)."""
    return ResNet([32, 32], [64, 128, 256], [1, 1, 1], num_classes, in_channels, aux_classes=aux_classes)


@register_model
def res_wide(num_classes: int = 8, in_channels: int = 1, aux_classes: int = 0) -> nn.Module:
    """About 14M parameters and 1.2 GMAC a face, a CIFAR-style ResNet-18's widths and depth at 48
    pixels: a teacher to train on a GPU and distil (``tiltwatch teach``), far over the live budget."""
    return ResNet([64, 64], [128, 256, 512], [2, 2, 2], num_classes, in_channels, aux_classes=aux_classes)


@register_model
def vgg_medium(num_classes: int = 8, in_channels: int = 1, aux_classes: int = 0) -> nn.Module:
    """About 3.5M parameters; more capacity for longer (GPU) runs."""
    return VGGNet(
        [[64, 64], [128, 128], [256, 256], [512, 256]], num_classes, in_channels, dropout=0.4, aux_classes=aux_classes
    )


class Ensemble(nn.Module):
    """The mean of its members' logits, head by head, plus a per-class bias on the first head
    (where ``tiltwatch export --balance`` folds its logit adjustment). One ONNX graph: the
    members run in the same onnxruntime call.

    Usage::

        model = Ensemble([model_a, model_b])
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)
        n_out = members[0].head[-1].out_features
        self.register_buffer("bias", torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        outs = [m(x) for m in self.members]
        if isinstance(outs[0], tuple):
            heads = [torch.stack(h).mean(0) for h in zip(*outs)]
            return (heads[0] + self.bias, *heads[1:])
        return torch.stack(outs).mean(0) + self.bias


def main_head_bias(model: nn.Module) -> torch.Tensor:
    """The bias added to a model's first head: an ensemble's own, or a single net's last linear layer's."""
    return model.bias if isinstance(model, Ensemble) else model.head[-1].bias
