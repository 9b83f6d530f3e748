"""Sample grids say what each image is (the class or prompt under it, LR | bicubic | SR | HR over the columns) and
when it was drawn (epoch and step over the grid), in text readable at the size the Runs tab shows them."""
import math

import numpy as np
import yaml
from PIL import Image

from pipelines.sample.images import LABEL_LINE_PX, captioned_grid, label_px, line_px, save_grid


def has_text(band: np.ndarray) -> bool:
    """Black text on white: mostly white, with some dark ink."""
    grey = band.mean(axis=-1) if band.ndim == 3 else band
    return (grey > 250).mean() > 0.6 and (grey < 128).sum() > 5


def test_captions_are_written_under_each_image_and_headers_over_each_column():
    images = np.zeros((6, 64, 64, 3), np.uint8)  # black images: any white band with ink is text
    grid = captioned_grid(images, ncols=3, captions=["0", "1", "2", "a red circle on a blue background", "4", "5"],
                          headers=["LR", "bicubic", "SR"], pad=4)
    top = LABEL_LINE_PX + 4  # one line of headers
    assert has_text(grid[:top, 4:68])  # "LR" over the first column
    first_row = top + 4
    assert not has_text(grid[first_row:first_row + 64, 4:68])  # the image itself
    assert has_text(grid[first_row + 64:first_row + 64 + LABEL_LINE_PX, 4:68])  # "0" under it
    second_row = first_row + 64 + LABEL_LINE_PX + 4
    third_line = second_row + 64 + 2 * LABEL_LINE_PX
    assert has_text(grid[third_line:third_line + LABEL_LINE_PX, 4:68])  # the long prompt wrapped to the image's width


def ink_rows(band: np.ndarray) -> int:
    """How many pixel rows of `band` hold dark ink (the height of the text in it)."""
    grey = band.mean(axis=-1) if band.ndim == 3 else band
    rows = np.flatnonzero((grey < 128).any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def test_a_class_conditional_run_writes_the_class_under_each_sample_and_the_epoch_over_the_grid(conditional_run):
    _, folder = conditional_run
    path = sorted((folder / "samples").glob("epoch_*.png"))[-1]
    grid = np.asarray(Image.open(path).convert("L"))
    num = yaml.safe_load((folder / "config.yaml").read_text())["training"]["num_sample_images"]
    ncols = (grid.shape[1] - 4) // 68  # 8 px digits are shown at 64 px, 4 px apart
    lead = line_px(label_px(grid.shape[1], math.ceil(num / ncols) * 68 + 4))
    assert has_text(grid[4:4 + lead, 4:grid.shape[1] // 2])  # "epoch 2 · step 8" over the grid
    first_row = 4 + lead + 4
    # right under the first image, its class is written (not the next image)
    assert has_text(grid[first_row + 64:first_row + 64 + lead, 4:68])
    assert path.stem == "epoch_2"


def test_the_labels_of_a_wide_strip_stay_readable_when_it_is_shown_300_px_wide():
    """An SR strip (LR | bicubic | SR | HR of 256 px crops) is 1,044 px wide; the Runs tab shows it about 300 px wide:
    its headers and title are drawn large enough to be read there (capitals at least 8 px tall)."""
    strip = captioned_grid(np.zeros((8, 256, 256, 3), np.uint8), ncols=4, headers=["LR", "bicubic", "SR", "HR"],
                           title="epoch 12 · step 4800")
    assert strip.shape[1] == 1044
    lead = line_px(label_px(1044, 2 * 260 + 4))
    title, headers = strip[4:4 + lead, :], strip[4 + lead:4 + 2 * lead, 4:260]
    shown = 300 / strip.shape[1]
    assert has_text(title) and has_text(headers)
    assert ink_rows(headers) * shown >= 8, ink_rows(headers)  # "LR": capitals only
    assert ink_rows(title) * shown >= 8, ink_rows(title)


def test_a_grid_of_tiny_images_is_titled_in_the_least_size(tmp_path):
    path = save_grid(np.full((4, 8, 8, 1), 0, np.uint8), tmp_path / "g.png", title="epoch 1 · step 3")
    grid = np.asarray(Image.open(path))
    assert has_text(grid[4:4 + LABEL_LINE_PX, :])  # 64 px cells: the least text size (11 px) is readable as it is
    assert not has_text(grid[4 + LABEL_LINE_PX + 4:4 + LABEL_LINE_PX + 4 + 64, 4:68])  # then the first image
