"""The shapes alignment checker on drawn images whose answers are known."""
import numpy as np
import pytest
from PIL import Image

from pipelines.data.builtin import COLOURS, SHAPES, draw_shape
from pipelines.metrics.alignment import alignment, parse_caption, read_shape


def drawn(shape, colour, background, size, seed):
    img = draw_shape(shape, colour, background, np.random.default_rng(seed))
    return np.asarray(img.resize((size, size), Image.Resampling.BICUBIC))


@pytest.mark.parametrize("size", [32, 64])
def test_reads_every_drawn_combination(size):
    right = total = 0
    for i, (shape, colour, background) in enumerate((s, c, b) for s in SHAPES for c in COLOURS for b in COLOURS if c != b):
        seen = read_shape(drawn(shape, colour, background, size, i))
        right += (seen.shape, seen.colour, seen.background) == (shape, colour, background)
        total += 1
    assert right / total > 0.95, right / total  # 168 images


def test_scores_captions_and_refuses_others():
    images = np.stack([drawn("circle", "red", "blue", 32, 0), drawn("square", "yellow", "black", 32, 1),
                       np.full((32, 32, 3), 128, np.uint8)])
    captions = ["a red circle on a blue background", "a green square on a black background", "a red circle on a white background"]
    scores = alignment(images, captions)
    assert scores == {"colour": pytest.approx(1 / 3), "shape": pytest.approx(2 / 3), "background": pytest.approx(2 / 3),
                      "all": pytest.approx(1 / 3)}
    assert read_shape(images[2]).shape is None  # a blank image shows no shape
    with pytest.raises(ValueError, match="not a shapes caption"):
        parse_caption("a photo of a cat")
