"""Batched augmentation on normalised (N, 1, H, W) tensors: one affine warp for the batch.

Flip, rotation, scale and shift go through a single ``grid_sample``; brightness,
contrast, blur and occlusion are per-sample tensor ops. No per-image Python loop.

The camera degradations (off by default, so every existing config trains as before) make
faces look like what the live pipeline passes on rather than FER2013's web photos, the same
kinds ``tiltwatch eval --degrade`` scores: ``downscale`` (a face down to ``downscale_min``
pixels and back up), ``jpeg`` (compression at a quality in ``jpeg_quality``; the one step
that loops, over the chosen images only, through OpenCV), ``dark`` (under-exposure) and
``noise`` (sensor noise). Each value is the share of a batch's images it is applied to.
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
    downscale: float = 0.0
    downscale_min: int = 12
    jpeg: float = 0.0
    jpeg_quality: tuple[int, int] = (20, 60)
    dark: float = 0.0
    noise: float = 0.0
    noise_std: float = 0.1  # in input units ([-1, 1]): 0.1 is about 13 grey levels


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
    return camera_degrade(x, cfg, rand).clamp(-1.5, 1.5)


def camera_degrade(x: torch.Tensor, cfg: AugmentConfig, rand) -> torch.Tensor:
    """The camera degradations of ``cfg`` on a normalised batch (see the module's docstring)."""
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    if cfg.downscale > 0:
        # one small size per batch keeps it one interpolate call; the chosen images go down and back
        side = int(cfg.downscale_min + rand(1).item() * (min(h, w) - cfg.downscale_min))
        small = F.interpolate(x, size=(side, side), mode="area")
        x = torch.where(rand(n, 1, 1, 1) < cfg.downscale, F.interpolate(small, size=(h, w), mode="bilinear"), x)
    if cfg.jpeg > 0:
        x = _jpeg(x, rand(n) < cfg.jpeg, cfg.jpeg_quality, rand)
    if cfg.dark > 0:
        scale = 0.3 + 0.5 * rand(n, 1, 1, 1)  # pixel values x 0.3 to 0.8, towards black (-1)
        x = torch.where(rand(n, 1, 1, 1) < cfg.dark, (x + 1) * scale - 1, x)
    if cfg.noise > 0:
        noisy = x + _normal_like(x, rand) * cfg.noise_std
        x = torch.where(rand(n, 1, 1, 1) < cfg.noise, noisy, x)
    return x


def _normal_like(x: torch.Tensor, rand) -> torch.Tensor:
    """Standard normal noise from the batch's uniform generator (Box-Muller), so one seed still
    fixes the whole augmentation."""
    u1, u2 = rand(*x.shape).clamp_min(1e-7), rand(*x.shape)
    return torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)


def _jpeg(x: torch.Tensor, chosen: torch.Tensor, quality: tuple[int, int], rand) -> torch.Tensor:
    import cv2
    import numpy as np

    idx = chosen.nonzero().flatten().tolist()
    if not idx:
        return x
    x = x.clone()
    q = (quality[0] + rand(len(idx)) * (quality[1] - quality[0])).round().int().tolist()
    pixels = ((x[idx, 0].detach().float().cpu().numpy() + 1) * 127.5).clip(0, 255).round().astype(np.uint8)
    for k, (i, img) in enumerate(zip(idx, pixels)):
        _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q[k]])
        back = torch.from_numpy(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 127.5 - 1)
        x[i, 0] = back.to(x.dtype).to(x.device)
    return x
