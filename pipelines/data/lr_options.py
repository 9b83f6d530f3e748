"""The choices of LR-pair preparation, importable without torch: the studio builds its form from them."""
from PIL import Image

RESIZE_METHODS = {
    "nearest": Image.Resampling.NEAREST,
    "linear": Image.Resampling.BILINEAR,
    "cubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
DEGRADATIONS = ("bicubic", "realesrgan")  # a plain resize, or Real-ESRGAN's blur / resize / noise / JPEG
