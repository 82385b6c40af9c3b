"""A small CNN that reads categorical attributes off images: the judge of factor swaps.

Trained on a store's real thumbnails (never on decoded images), it says which shape or colour a
decoded image shows, so that a swap of semantic factors can be checked on pixels rather than in
code space. One linear head per attribute on a shared convolutional trunk.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

JUDGE_STEPS = 800
JUDGE_BATCH = 64


class AttributeJudge(nn.Module):
    """``judge(x)`` → logits per attribute for images ``x`` float ``[B, C, S, S]`` in [0, 1]."""

    def __init__(self, channels: int, classes: dict[str, int], width: int = 32) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.heads = nn.ModuleDict({name: nn.Linear(2 * width, n) for name, n in classes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.trunk(x)
        return {name: head(features) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch: int = 512) -> dict[str, torch.Tensor]:
        """The most likely class of each attribute: int64 ``[B]`` per name."""
        self.eval()
        device = next(self.parameters()).device
        out: dict[str, list[torch.Tensor]] = {name: [] for name in self.heads}
        for i in range(0, len(x), batch):
            for name, logits in self(x[i : i + batch].to(device)).items():
                out[name].append(logits.argmax(1).cpu())
        return {name: torch.cat(parts) for name, parts in out.items()}


def as_images(pixels: np.ndarray) -> torch.Tensor:
    """uint8 ``[B, H, W, C]`` (a store's thumbnails) → float ``[B, C, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float() / 255


def train_judge(
    images: torch.Tensor,
    labels: dict[str, np.ndarray],
    *,
    seed: int = 0,
    steps: int = JUDGE_STEPS,
    device: torch.device | str = "cpu",
) -> AttributeJudge:
    """Fit a judge on ``images`` float ``[N, C, S, S]`` and integer ``labels`` per attribute."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    targets = {name: torch.from_numpy(np.asarray(v, dtype=np.int64)) for name, v in labels.items()}
    classes = {name: int(t.max()) + 1 for name, t in targets.items()}
    judge = AttributeJudge(images.shape[1], classes).to(device)
    optimizer = torch.optim.Adam(judge.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    judge.train()
    for _ in range(steps):
        pick = torch.randint(0, len(images), (JUDGE_BATCH,), generator=generator)
        logits = judge(images[pick].to(device))
        loss = sum(F.cross_entropy(logits[n], targets[n][pick].to(device)) for n in classes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
        schedule.step()
    return judge.eval()
