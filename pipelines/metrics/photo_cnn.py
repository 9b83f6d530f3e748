"""`photo-cnn`: a small CIFAR-10 classifier whose 192-d penultimate layer serves as photo features offline.

FID's Inception weights cannot be had on machines without a network; hog-colour knows edges and colours but not
objects. This network learned CIFAR-10's ten classes of 32 x 32 photos, so its distance notices when generated
photos stop looking like cars, birds or horses. Its weights ship with the code (`photo_cnn.safetensors`, float16,
made by `python -m pipelines.metrics.photo_cnn DATASET_FOLDER`, see `train_photo_cnn`), so the same figure means
the same thing on every machine. It is not Inception: its figures are called FD (photo-cnn), never FID.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

PHOTO_CNN_FILE = Path(__file__).with_name("photo_cnn.safetensors")
SIZE = 32  # the resolution it was trained at; other sizes are resized to it
# `auto` picks it for colour images this close to 32 px; further away the objects' scale differs too much from
# what it learned, and hog-colour (which looks at layout, not objects) is the fairer default.
AUTO_SIZES = (24, 64)


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class PhotoCNN(nn.Module):
    """A photo classifier on 32 x 32 RGB; `forward` returns the 192-d features (global average pool) before the
    class layer, divided by their RMS on real photos so that KID's polynomial kernel sees values near 1."""
    name, num_features = "photo-cnn", 192

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *_block(3, 24), nn.MaxPool2d(2),  # 16 px
            *_block(24, 48), nn.MaxPool2d(2),  # 8 px
            *_block(48, 96), nn.MaxPool2d(2),  # 4 px
            *_block(96, 192), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(192, 10)
        self.register_buffer("scale", torch.ones(()))

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """uint8 N x C x H x W (1 or 3 channels, any size) -> float N x 3 x 32 x 32 in [-1, 1]."""
        x = images.float() / 127.5 - 1.0
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
        if x.shape[-2:] != (SIZE, SIZE):
            x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(images)) / self.scale


def suits(image_shape) -> bool:
    """Whether `auto` should use photo-cnn for images of this C x H x W shape: colour, near 32 px."""
    channels, height, width = image_shape[-3:]
    return channels == 3 and AUTO_SIZES[0] <= min(height, width) and max(height, width) <= AUTO_SIZES[1]


def load_photo_cnn(path: Path = PHOTO_CNN_FILE) -> PhotoCNN:
    """The network in float32 (weights stored as float16), with the weights file's fingerprint; features are
    computed in float32 on the CPU, so they agree across machines to float rounding."""
    from safetensors.torch import load_file

    model = PhotoCNN()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(path).items()})
    model.fingerprint = "photo-cnn-" + hashlib.sha1(Path(path).read_bytes()).hexdigest()[:10]
    return model.eval()


def save_photo_cnn(model: PhotoCNN, path: Path = PHOTO_CNN_FILE) -> None:
    from safetensors.torch import save_file

    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}, path)


def read_class_folders(folder: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """All images of `folder`/<class>/*, as uint8 N x 3 x 32 x 32, their labels, and the class names."""
    import numpy as np
    from PIL import Image

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(classes) != 10:
        raise ValueError(f"dataset: {folder} has {len(classes)} class folders; expected CIFAR-10's 10")
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()):
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)))
            labels.append(label)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels), classes


def augment(x: torch.Tensor) -> torch.Tensor:
    """Random crops with 4 px of reflected padding and horizontal flips, one draw per image."""
    n = len(x)
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dy, dx = torch.randint(0, 9, (2, n))
    rows = (dy[:, None] + torch.arange(SIZE))[:, None, :, None].expand(n, 3, SIZE, SIZE + 8)
    x = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(SIZE))[:, None, None, :].expand(n, 3, SIZE, SIZE)
    x = x.gather(3, cols)
    flip = torch.rand(n) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def train_photo_cnn(folder: Path, epochs: int = 3, held_out: int = 5000, batch_size: int = 128, seed: int = 0,
                    log=print) -> tuple[PhotoCNN, float]:
    """Train on CIFAR-10's training photos but `held_out` of them (one-cycle SGD with momentum, crops and flips);
    returns the network, with weights rounded to float16 as shipped, and its accuracy on the held-out photos."""
    images, labels, _ = read_class_folders(folder)
    log(f"read {len(images)} photos from {folder}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        order = torch.randperm(len(images))
        held, used = order[:held_out], order[held_out:]
        model = PhotoCNN()
        steps = epochs * -(-len(used) // batch_size)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=steps, pct_start=0.25)
        start, done = time.perf_counter(), 0
        for epoch in range(epochs):
            model.train()
            total = 0.0
            for batch in used[torch.randperm(len(used))].split(batch_size):
                x = augment(PhotoCNN.prepare(images[batch]))
                loss = F.cross_entropy(model.head(model.body(x)), labels[batch], label_smoothing=0.1)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch)
                done += 1
                if done % 50 == 0:
                    log(f"step {done}/{steps}: loss {loss.item():.3f}, {time.perf_counter() - start:.0f} s")
            log(f"epoch {epoch + 1}/{epochs}: loss {total / len(used):.3f}, held-out accuracy "
                f"{accuracy(model, images[held], labels[held]):.3f}, {time.perf_counter() - start:.0f} s")
        model.eval()
        model.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                               for k, v in model.state_dict().items()})  # as shipped
        with torch.no_grad():
            real = torch.cat([model.body(PhotoCNN.prepare(images[part])) for part in used[:10_000].split(500)])
            model.scale.fill_(real.pow(2).mean().sqrt().item())
        model.scale.copy_(model.scale.half().float())
    return model, accuracy(model, images[held], labels[held])


@torch.no_grad()
def accuracy(model: PhotoCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    mode = model.training
    model.eval()
    hits = sum((model.head(model.body(PhotoCNN.prepare(x))).argmax(1) == y).sum().item()
               for x, y in zip(images.split(500), labels.split(500)))
    model.train(mode)
    return hits / len(images)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="CIFAR-10's training photos, one folder per class "
                        "(../shared/datasets/cifar10-train-jpeg.tar.gz unpacked; see README)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=PHOTO_CNN_FILE)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    trained, held_out_accuracy = train_photo_cnn(args.dataset, args.epochs)
    save_photo_cnn(trained, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB; accuracy on 5,000 held-out photos "
          f"{held_out_accuracy:.3f}; {time.perf_counter() - began:.0f} s with {args.threads} threads)")
