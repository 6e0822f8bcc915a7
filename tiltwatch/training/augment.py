"""Batched augmentation on normalised (N, 1, H, W) tensors: one affine warp for the batch.

Flip, rotation, scale and shift go through a single ``grid_sample``; brightness,
contrast, blur and occlusion are per-sample tensor ops. No per-image Python loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    flip: float = 0.5
    rotate_deg: float = 12.0
    scale: float = 0.10
    shift: float = 0.08
    brightness: float = 0.25
    contrast: float = 0.25
    blur: float = 0.15
    occlude: float = 0.3
    occlude_size: float = 0.35


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    n, dev = x.shape[0], x.device

    def rand(*shape):
        return torch.rand(*shape, generator=gen, device=dev)

    ang = (rand(n) * 2 - 1) * math.radians(cfg.rotate_deg)
    scl = 1 + (rand(n) * 2 - 1) * cfg.scale
    flip = torch.where(rand(n) < cfg.flip, -1.0, 1.0)
    cos, sin = torch.cos(ang) / scl, torch.sin(ang) / scl
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, (rand(n) * 2 - 1) * cfg.shift * 2], 1),
            torch.stack([sin * flip, cos, (rand(n) * 2 - 1) * cfg.shift * 2], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    # brightness / contrast around each image's mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    c = 1 + (rand(n, 1, 1, 1) * 2 - 1) * cfg.contrast
    b = (rand(n, 1, 1, 1) * 2 - 1) * cfg.brightness * 2  # inputs span [-1, 1]
    x = (x - mean) * c + mean + b

    if cfg.blur > 0:
        k = torch.tensor([1.0, 2.0, 1.0], device=dev)
        k = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
        blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
        x = torch.where(rand(n, 1, 1, 1) < cfg.blur, blurred, x)

    if cfg.occlude > 0:
        h, w = x.shape[-2:]
        side = (cfg.occlude_size * rand(n) * min(h, w)).long().clamp(min=1)
        cy, cx = (rand(n) * h).long(), (rand(n) * w).long()
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        box = ((ys - cy.view(n, 1, 1)).abs() <= side.view(n, 1, 1) // 2) & (
            (xs - cx.view(n, 1, 1)).abs() <= side.view(n, 1, 1) // 2
        )
        box &= (rand(n) < cfg.occlude).view(n, 1, 1)
        x = x.masked_fill(box[:, None], 0.0)
    return x.clamp(-1.5, 1.5)
