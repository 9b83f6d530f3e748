"""Built-in datasets that need no download: digits, faces, photos, and synthetic shapes."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .source import Record, Source

COLOURS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (240, 220, 40),
    "purple": (140, 60, 180), "orange": (245, 140, 30), "white": (250, 250, 250), "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "triangle")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "cat")


def digits(count: int, seed: int) -> Source:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0 * 255.0).round().astype(np.uint8)
    records = [Record(Image.fromarray(img, "L"), int(y), f"a handwritten digit {y}") for img, y in zip(images, bunch.target)]
    return Source(records, [str(i) for i in range(10)])


def faces(count: int, seed: int) -> Source:
    from skimage.data import lfw_subset

    # scikit-image documents the first 100 as faces and the next 100 as non-faces.
    images = (lfw_subset() * 255.0).round().astype(np.uint8)
    records = [Record(Image.fromarray(img, "L"), int(i >= 100), "a face" if i < 100 else "not a face") for i, img in enumerate(images)]
    return Source(records, ["face", "non-face"])


def photos(count: int, seed: int) -> Source:
    """Random square crops (a quarter to all of the short side) of scikit-image's bundled colour photos."""
    rng = np.random.default_rng(seed)
    whole = whole_photos()
    sources, names, records = [r.image for r in whole.records], [r.name for r in whole.records], []
    for _ in range(count):
        k = int(rng.integers(len(sources)))
        w, h = sources[k].size
        side = int(rng.integers(min(w, h) // 4, min(w, h) + 1))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        records.append(Record(sources[k].crop((x, y, x + side, y + side)), k, f"a crop of the {names[k]} photo"))
    return Source(records, names, whole.skipped)


def whole_photos(count: int = 0, seed: int = 0) -> Source:
    """scikit-image's bundled colour photos, whole (super-resolution trains on patches of them)."""
    import skimage.data

    records, skipped = [], []
    for k, name in enumerate(PHOTOS):
        try:
            records.append(Record(Image.fromarray(getattr(skimage.data, name)()[..., :3]), k, f"the {name} photo", name))
        except Exception as exc:  # some photos need an optional download; use the rest
            skipped.append((f"skimage.data.{name}", str(exc).splitlines()[0]))
    return Source(records, list(PHOTOS), skipped)


def draw_shape(shape: str, colour: str, background: str, rng: np.random.Generator, canvas: int = 64) -> Image.Image:
    img = Image.new("RGB", (canvas, canvas), COLOURS[background])
    draw = ImageDraw.Draw(img)
    size = rng.uniform(0.3, 0.7) * canvas
    cx, cy = rng.uniform(size / 2, canvas - size / 2, size=2)
    x0, y0, x1, y1 = cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2
    if shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=COLOURS[colour])
    elif shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=COLOURS[colour])
    else:
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=COLOURS[colour])
    return img


def shapes(count: int, seed: int, holdout: tuple[tuple[str, str], ...] = ()) -> Source:
    """Coloured circles, squares and triangles on a background of another colour; label = shape."""
    rng = np.random.default_rng(seed)
    colours, records = list(COLOURS), []
    while len(records) < count:
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colour, background = (colours[i] for i in rng.choice(len(colours), size=2, replace=False))
        if (colour, shape) in holdout:
            continue
        img = draw_shape(shape, colour, background, rng)
        records.append(Record(img, SHAPES.index(shape), f"a {colour} {shape} on a {background} background"))
    return Source(records, list(SHAPES))


BUILTIN = {"digits": digits, "faces": faces, "photos": photos, "shapes": shapes}
