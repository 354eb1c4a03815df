"""AR1-style latent-replay training in PyTorch: the reference for ``pulptrain run``.

Trains MobileNetV1's adaptive stage above the latent-replay layer conv5_4/dw
(Pellegrini et al. 2020, "Latent Replay for Real-Time Continual Learning";
Ravaglia et al. 2021) on precomputed latents, so the speed and accuracy of
pulptrain's C runtime can be compared with PyTorch on the same stream.

Adaptive stage (Caffe MobileNet names; TF-slim blocks Conv2d_10..13 when
conv5_1 is Conv2d_7), input latents NHWC [N, 8, 8, 512] float32:

    conv5_4/pw  1x1 512->512            + bias + ReLU6
    conv5_5     dw 3x3 s1, pw 512->512  + bias + ReLU6 each
    conv5_6     dw 3x3 s2, pw 512->1024 + bias + ReLU6 each (TF "SAME": pad 0 top/left, 1 bottom/right)
    conv6       dw 3x3 s1, pw 1024->1024 + bias + ReLU6 each
    global average pool, linear 1024->num_classes

BatchNorm is folded into the biases, tensors are channels_last. Training:
SGD (momentum 0.9, weight decay 5e-4, plain cross-entropy), mini-batches of
128. The first batch trains alone; afterwards each mini-batch holds
``N // ((N + M) // 128)`` new latents (M: latents in the memory) and fills the
rest with replays (21 new + 107 replays for N = 300, M = 1500); an epoch has
``N // new`` mini-batches and walks the shuffled memory in order, as in
``pulptrain.cl``. After batch i, ``h = min(M // (i
+ 1), N)`` random new latents enter the memory: free slots first, then
replacing random entries. The replay memory is FP32 here (no quantization),
and there is no Batch Renormalization or CWR* (this is the plain AR1-style
loop the C runtime implements).

    python bench/ar1_torch_reference.py --synthetic --batches 4 --new 300 --json out.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

LATENT_SHAPE = (8, 8, 512)
# name -> (kind, channels_in, channels_out, stride); kinds: pw (1x1 conv), dw (3x3 depthwise)
LAYERS = (("conv5_4/pw", "pw", 512, 512, 1),
          ("conv5_5/dw", "dw", 512, 512, 1), ("conv5_5/pw", "pw", 512, 512, 1),
          ("conv5_6/dw", "dw", 512, 512, 2), ("conv5_6/pw", "pw", 512, 1024, 1),
          ("conv6/dw", "dw", 1024, 1024, 1), ("conv6/pw", "pw", 1024, 1024, 1))


class AdaptiveStage(nn.Module):
    """The trainable part above conv5_4/dw; ``forward`` takes NCHW-shaped,
    channels_last tensors (a free view of NHWC latents)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.convs = nn.ModuleList()
        self.strides = []
        for _, kind, cin, cout, stride in LAYERS:
            if kind == "pw":
                self.convs.append(nn.Conv2d(cin, cout, 1))
            else:
                self.convs.append(nn.Conv2d(cin, cout, 3, stride=stride, groups=cin))
            self.strides.append(stride if kind == "dw" else 0)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, stride in zip(self.convs, self.strides):
            if stride == 1:
                x = F.pad(x, (1, 1, 1, 1))
            elif stride == 2:
                x = F.pad(x, (0, 1, 0, 1))  # TF SAME at stride 2 on an even size
            x = F.relu6(conv(x))
        return self.fc(x.mean(dim=(2, 3)))

    def load_pulptrain_params(self, params: dict) -> None:
        """Copy weights in pulptrain's layouts: ``<layer>/weight`` pointwise
        [Cout, Cin], depthwise [KH, KW, C], ``fc/weight`` [Out, In]; ``<layer>/bias`` [C]."""
        with torch.no_grad():
            for (name, kind, _, _, _), conv in zip(LAYERS, self.convs):
                weight = np.asarray(params[f"{name}/weight"], np.float32)
                weight = weight[:, :, None, None] if kind == "pw" else weight.transpose(2, 0, 1)[:, None]
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
                conv.bias.copy_(torch.from_numpy(np.asarray(params[f"{name}/bias"], np.float32)))
            self.fc.weight.copy_(torch.from_numpy(np.asarray(params["fc/weight"], np.float32)))
            self.fc.bias.copy_(torch.from_numpy(np.asarray(params["fc/bias"], np.float32)))


def to_torch(latents: np.ndarray) -> torch.Tensor:
    """NHWC float32 numpy -> NCHW-shaped channels_last tensor, without a copy."""
    return torch.from_numpy(np.ascontiguousarray(latents, np.float32)).permute(0, 3, 1, 2)


def evaluate(model: nn.Module, latents: torch.Tensor, labels: torch.Tensor, chunk: int = 256) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, latents.shape[0], chunk):
            logits = model(latents[start:start + chunk])
            correct += int((logits.argmax(1) == labels[start:start + chunk]).sum())
    return correct / max(1, latents.shape[0])


def new_per_minibatch(new: int, stored: int, minibatch: int = 128) -> int:
    """New latents in each mini-batch once ``stored`` replays exist:
    N // ((N + M) // 128), at least 1 (M: latents currently in the memory)."""
    return max(1, min(minibatch, new // max(1, (new + stored) // minibatch)))


def update_memory(memory_x, memory_y, new_x, new_y, capacity: int, batch_index: int, rng):
    """AR1 memory rule: h = min(M // (i + 1), N) random new latents enter;
    free slots are filled first, then random entries filled before this batch
    are replaced."""
    h = min(capacity // (batch_index + 1), new_x.shape[0])
    chosen = torch.from_numpy(rng.choice(new_x.shape[0], h, replace=False))
    add_x, add_y = new_x[chosen], new_y[chosen]
    held = 0 if memory_x is None else memory_x.shape[0]   # entries before this batch
    free = capacity - held
    if memory_x is None:
        memory_x, memory_y = add_x[:free].clone(), add_y[:free].clone()
    elif free > 0:
        memory_x = torch.cat([memory_x, add_x[:free]])
        memory_y = torch.cat([memory_y, add_y[:free]])
    rest = h - max(free, 0)
    if rest > 0:
        # replace entries of earlier batches, not the ones just added
        slots = torch.from_numpy(rng.choice(held, rest, replace=False))
        memory_x[slots] = add_x[h - rest:]
        memory_y[slots] = add_y[h - rest:]
    return memory_x, memory_y


def run_reference(batches, test_latents, test_labels, num_classes: int = 50, memory_size: int = 1500,
                  minibatch: int = 128, epochs_first: int = 4, epochs_later: int = 4,
                  lr_first: float = 1e-3, lr_later: float = 1e-4, momentum: float = 0.9,
                  weight_decay: float = 5e-4, seed: int = 0, threads: int | None = None,
                  params: dict | None = None, evaluate_every: int = 1) -> dict:
    """Train on ``batches`` (a sequence of ``(latents [N, 8, 8, 512] float32 NHWC,
    labels [N] int)``) and test after every ``evaluate_every``-th batch.

    Returns ``dict(accuracy=[(batch index, test accuracy)], wall_time=s,
    train_time=s, eval_time=s, batch_train_times=[s], samples_trained=int)``."""
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = AdaptiveStage(num_classes).to(memory_format=torch.channels_last)
    if params is not None:
        model.load_pulptrain_params(params)
    test_x, test_y = to_torch(test_latents), torch.from_numpy(np.asarray(test_labels, np.int64))
    memory_x = memory_y = None
    accuracy, batch_times = [], []
    eval_time, samples = 0.0, 0
    start = time.perf_counter()
    for index, (latents, labels) in enumerate(batches):
        tick = time.perf_counter()
        new_x, new_y = to_torch(latents), torch.from_numpy(np.asarray(labels, np.int64))
        n = new_x.shape[0]
        first = memory_x is None
        lr, epochs = (lr_first, epochs_first) if first else (lr_later, epochs_later)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        stored = 0 if first else memory_x.shape[0]
        new_per_step = min(n, minibatch) if first else new_per_minibatch(n, stored, minibatch)
        replays_per_step = min(minibatch - new_per_step, stored)
        steps = max(1, n // new_per_step)
        model.train()
        for _ in range(epochs):
            order = torch.from_numpy(rng.permutation(n))
            replay_order = None if first else torch.from_numpy(rng.permutation(memory_x.shape[0]))
            for step in range(steps):
                take = order[step * new_per_step:(step + 1) * new_per_step]
                x, y = new_x[take], new_y[take]
                if replays_per_step:
                    count = replays_per_step
                    picks = replay_order[(torch.arange(count) + step * count) % stored]
                    x = torch.cat([x, memory_x[picks]])
                    y = torch.cat([y, memory_y[picks]])
                x = x.contiguous(memory_format=torch.channels_last)
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                samples += x.shape[0]
        memory_x, memory_y = update_memory(memory_x, memory_y, new_x, new_y, memory_size, index, rng)
        batch_times.append(time.perf_counter() - tick)
        if (index + 1) % evaluate_every == 0 or index == len(batches) - 1:
            tick = time.perf_counter()
            accuracy.append((index, evaluate(model, test_x, test_y)))
            eval_time += time.perf_counter() - tick
    wall = time.perf_counter() - start
    return dict(accuracy=accuracy, wall_time=wall, train_time=sum(batch_times), eval_time=eval_time,
                batch_train_times=batch_times, samples_trained=samples, threads=torch.get_num_threads())


def synthetic_stream(num_batches: int, first: int, new: int, test: int, num_classes: int, seed: int):
    """Random ReLU6-range latents (for timing only: accuracy is chance)."""
    rng = np.random.default_rng(seed)

    def draw(n):
        x = np.clip(rng.standard_normal((n,) + LATENT_SHAPE, np.float32) * 2.0, 0.0, 6.0)
        return x, rng.integers(0, num_classes, n)

    return [draw(first if i == 0 else new) for i in range(num_batches)], draw(test)


def load_stream(path: str):
    """An .npz with ``batch_<i>_x`` / ``batch_<i>_y`` (i = 0, 1, ...) and ``test_x`` / ``test_y``."""
    with np.load(path) as data:
        count = sum(1 for key in data.files if key.startswith("batch_") and key.endswith("_x"))
        batches = [(data[f"batch_{i}_x"], data[f"batch_{i}_y"]) for i in range(count)]
        return batches, (data["test_x"], data["test_y"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--synthetic", action="store_true", help="random latents (timing only)")
    source.add_argument("--latents", help=".npz of batch_<i>_x/_y and test_x/_y (NHWC float32)")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--first", type=int, default=3000, help="synthetic: size of the first batch")
    parser.add_argument("--new", type=int, default=300, help="synthetic: size of later batches")
    parser.add_argument("--test", type=int, default=500, help="synthetic: test latents")
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--memory", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if args.synthetic:
        batches, (test_x, test_y) = synthetic_stream(args.batches, args.first, args.new, args.test,
                                                     args.classes, args.seed)
    else:
        batches, (test_x, test_y) = load_stream(args.latents)
        batches = batches[:args.batches] if args.batches else batches
    result = run_reference(batches, test_x, test_y, num_classes=args.classes, memory_size=args.memory,
                           epochs_first=args.epochs, epochs_later=args.epochs, threads=args.threads,
                           seed=args.seed)
    result["config"] = vars(args)
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    print(f"train {result['train_time']:.2f} s for {result['samples_trained']} samples "
          f"({result['samples_trained'] / result['train_time']:.0f} samples/s, {result['threads']} threads); "
          f"final accuracy {result['accuracy'][-1][1]:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
