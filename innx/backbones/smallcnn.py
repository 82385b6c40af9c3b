"""``smallcnn``: the built-in classifier for 32–64 px images, fast enough to train on a laptop CPU.

Four 3×3 convolution blocks (batch norm, ReLU; the last three stride 2), global max pooling (it
learns shapes several times faster than average pooling), a
hidden fully connected layer and the logits. Every named layer is one module, so its output is what
``innx extract`` stores: ``input, conv1, conv2, conv3, conv4, pool, fc, logits, softmax``.
"""

from __future__ import annotations

from torch import nn

from innx.backbones.backbone import INPUT, Backbone
from innx.backbones.preprocessing import Preprocessing
from innx.errors import ConfigError

MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)


def _conv(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """``[B, 3, S, S]`` images (S from 32 to 64) → ``[B, num_classes]`` logits.

    Example::

        >>> import torch
        >>> SmallCNN(num_classes=4)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 4])
    """

    def __init__(self, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.conv1 = _conv(3, width, 1)
        self.conv2 = _conv(width, 2 * width, 2)
        self.conv3 = _conv(2 * width, 4 * width, 2)
        self.conv4 = _conv(4 * width, 4 * width, 2)
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(4 * width, 4 * width), nn.ReLU(inplace=True))
        self.logits = nn.Linear(4 * width, num_classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.conv4(self.conv3(self.conv2(self.conv1(x))))
        return self.logits(self.fc(self.pool(x)))


def smallcnn(num_classes: int = 10, size: int = 32, width: int = 32) -> Backbone:
    """A compact CNN classifier for 32–64 px RGB images (train it with innx fit classifier).

    ``size`` is the input size in pixels (images are resized to it), ``width`` the channels of the
    first block (later blocks have 2× and 4×).
    """
    if not 32 <= int(size) <= 64:
        raise ConfigError(f"smallcnn takes images of 32 to 64 px, not size={size}")
    if int(num_classes) < 2 or int(width) < 1:
        raise ConfigError(
            f"smallcnn needs num_classes >= 2 and width >= 1, got {num_classes} and {width}"
        )
    model = SmallCNN(int(num_classes), int(width))
    layers = {"input": INPUT, **{name: name for name in ("conv1", "conv2", "conv3", "conv4")}}
    layers.update(pool="pool", fc="fc", logits="logits")
    pre = Preprocessing(size=(int(size), int(size)), mean=MEAN, std=STD)
    return Backbone(model, layers, pre, logits="logits")
