#!/usr/bin/env python3
"""PyTorch CPU timings of SISN's end-to-end cases, the external reference of `npm run bench`.

Not a dependency of the engine: bench/run.js runs this only where `import torch` works (Debian's
python3-torch, say) and puts its times beside the engine's, measured in the same run. The network
below is written from the paper's description and the official code's semantics (the same layers,
shapes and ops as src/nn/; nearest-upsampled LR input, SISN's space-to-depth, split attention
radix 4, pixel-shuffle tail), with PyTorch's default initialisation. Timings need no trained
weights: the cost of every op is the same for any values.

  python3 bench/pytorch_reference.py [--threads N] [--quick] [--case NAME ...]   prints one JSON object

bench/run.js times each case in a process of its own: after the forwards, the training step in the
same process took 9.7-10.7 s against 3.3-4.4 s alone (2 threads; a minute of system time went to
the allocator), which would flatter the engine.
"""
import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = (0.4488, 0.4371, 0.4040)


class SplitAttention(nn.Module):
    def __init__(self, c, radix=4):
        super().__init__()
        inter = max(c * radix // 4, 32)
        self.radix = radix
        self.conv = nn.Conv2d(c, c * radix, 3, padding=1, groups=radix, bias=False)
        self.bn0 = nn.BatchNorm2d(c * radix)
        self.conv1x1_1 = nn.Conv2d(c, inter, 1)
        self.bn1 = nn.BatchNorm2d(inter)
        self.conv1x1_2 = nn.Conv2d(inter, c * radix, 1)

    def forward(self, x):
        z = F.relu(self.bn0(self.conv(x)))
        b, rc = z.shape[:2]
        splits = z.view(b, self.radix, rc // self.radix, *z.shape[2:])
        gap = F.adaptive_avg_pool2d(splits.sum(1), 1)
        a = self.conv1x1_2(F.relu(self.bn1(self.conv1x1_1(gap))))
        a = F.softmax(a.view(b, self.radix, -1), dim=1).view(b, self.radix, -1, 1, 1)
        return (a * splits).sum(1)


class ISAB(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = SplitAttention(c)
        self.conv3 = nn.Conv2d(c, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = self.conv2(F.relu(self.bn1(self.conv1(x))))
        return F.relu(self.bn3(self.conv3(y)) + x)


class ESAG(nn.Module):
    def __init__(self, c, blocks):
        super().__init__()
        self.body = nn.Sequential(*[ISAB(c) for _ in range(blocks)], nn.Conv2d(c, c, 3, padding=1))
        self.IA = ISAB(c)

    def forward(self, x):
        return self.body(x) + self.IA(x)


class SISN(nn.Module):
    def __init__(self, scale, groups=10, blocks=10, c=64):
        super().__init__()
        self.scale = scale
        self.sub_mean = nn.Conv2d(3, 3, 1)
        self.add_mean = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            for conv, sign in ((self.sub_mean, -1), (self.add_mean, 1)):
                conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
                conv.bias.copy_(sign * 255 * torch.tensor(MEAN))
        self.head = nn.Conv2d(3 * scale * scale, c, 3, padding=1)
        self.body = nn.Sequential(*[ESAG(c, blocks) for _ in range(groups)])
        self.body_conv = nn.Conv2d(c, c, 3, padding=1)
        tail = []
        for _ in range(int(math.log2(scale))):
            tail += [nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2)]
        self.up = nn.Sequential(*tail)
        self.tail = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x):
        s = self.scale
        x = self.sub_mean(x)
        n, c, h, w = x.shape
        x = x.view(n, c, h // s, s, w // s, s).permute(0, 3, 5, 1, 2, 4).reshape(n, c * s * s, h // s, w // s)
        f0 = self.head(x)
        r = self.body_conv(self.body(f0)) + f0
        return self.add_mean(self.tail(self.up(r)))


def median_ms(fn, runs, warmup=2):
    # PyTorch's first calls are slow (oneDNN primitive creation, allocator growth; the first training
    # steps take several times the later ones: docs/performance.md), so a median after one warm-up
    # step overstates it. Its steady state is the fair reference.
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


FORWARDS = [(4, 128), (4, 256), (8, 256)]
TRAINING = 'training step x4'
CASES = [f'forward x{scale} HR {hr}' for scale, hr in FORWARDS] + [TRAINING]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--case', action='append', choices=CASES, help='time only this case (repeatable; default: all)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    out = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'cases': {}}
    wanted = args.case or (CASES[:1] if args.quick else CASES)
    for scale, hr in FORWARDS:
        if f'forward x{scale} HR {hr}' not in wanted:
            continue
        model = SISN(scale).eval()
        lr = torch.rand(1, 3, hr // scale, hr // scale) * 255
        with torch.no_grad():
            x = F.interpolate(lr, scale_factor=scale, mode='nearest')
            out['cases'][f'forward x{scale} HR {hr}'] = median_ms(lambda: model(x), 5)
    if TRAINING in wanted:
        model = SISN(4).train()
        opt = torch.optim.Adam(model.parameters(), lr=2e-4)
        lr = torch.rand(10, 3, 32, 32) * 255
        hr = torch.rand(10, 3, 128, 128) * 255

        def step():
            opt.zero_grad()
            loss = F.l1_loss(model(F.interpolate(lr, scale_factor=4, mode='nearest')), hr)
            loss.backward()
            opt.step()

        out['cases'][TRAINING] = median_ms(step, 5)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
