"""Sample grids say what each image is: the class or prompt under it, LR | bicubic | SR | HR over the columns."""
import numpy as np
from PIL import Image

from pipelines.sample.images import LABEL_LINE_PX, captioned_grid


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


def test_a_class_conditional_run_writes_the_class_under_each_sample(conditional_run):
    _, folder = conditional_run
    grid = np.asarray(Image.open(sorted((folder / "samples").glob("epoch_*.png"))[-1]).convert("L"))
    # 8 px digits are shown at 64 px; right under the first one, its class is written (not the next image).
    assert has_text(grid[4 + 64:4 + 64 + LABEL_LINE_PX, 4:68])
