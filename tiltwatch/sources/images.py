"""Reading still images of any common kind into 8-bit BGR, and image files/folders as a source."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..native import DECODER_LINES, quiet_decoders, quiet_native_stderr
from .base import Frame, FrameSource

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm", ".jp2", ".avif"}
IMAGE_EXTS |= {".heic", ".heif"}  # phones' photos; read with the optional pillow-heif (the heic extra)
MIN_SIDE = 16  # below this no face can be found; say so instead of returning nothing


def to_bgr8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Any grey / BGR / BGRA image, 8- or 16-bit or float in [0, 1], -> contiguous uint8 BGR."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name}: expected a numpy image array, got {type(image).__name__}")
    if image.size == 0:
        raise InputError(f"{name}: empty image")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise InputError(f"{name}: unsupported image shape {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise InputError(
            f"{name}: image is {image.shape[1]}x{image.shape[0]}, too small to hold a face (min {MIN_SIDE}px)"
        )
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.nan_to_num(image)
        scale = 1.0 if image.max() <= 1 else 255.0  # floats in [0, 1], or 8-bit values kept as floats
        image = (np.clip(image / scale, 0, 1) * 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"{name}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 BGR, with a one-line InputError naming the file on failure."""
    return decode_image(_file_bytes(Path(path)), str(path))


def _file_bytes(path: Path) -> np.ndarray:
    """An image file's bytes, with a one-line InputError naming it when it cannot be read."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if data.size == 0:
        raise InputError(f"{path}: empty file")
    return data


def decode_image(data: bytes | np.ndarray, name: str = "image") -> np.ndarray:
    """An encoded image (file bytes) as upright uint8 BGR; a one-line InputError naming ``name``
    when it is not an image."""
    data = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray) else data
    # any depth and colour, turned upright by the EXIF orientation a phone writes (IMREAD_UNCHANGED
    # would leave a portrait photo lying on its side); alpha is dropped, which to_bgr8 does anyway
    with quiet_native_stderr(drop=DECODER_LINES) if quiet_decoders() else nullcontext():  # ours follow
        img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if img is None:  # a format OpenCV does not read (GIF), or one under the wrong extension
        img = _decode_with_pillow(data, name)
    if img is None:
        raise InputError(f"{name}: not an image or corrupt")
    return to_bgr8(img, name)


def _decode_with_pillow(data: np.ndarray, name: str) -> np.ndarray | None:
    """The first frame of what Pillow can read (GIF, AVIF, HEIC with pillow-heif), upright, as BGR;
    None if it cannot."""
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    if _is_heif(data):
        try:
            import pillow_heif
        except ImportError:
            raise InputError(
                f"{name}: a HEIC/HEIF photo; reading it needs pillow-heif (pip install 'tiltwatch[heic]')"
            ) from None
        pillow_heif.register_heif_opener()
    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _hidden(file: Path, root: Path) -> bool:
    """Under a hidden folder below ``root`` (a run's .partial-* staging among them)."""
    return any(part.startswith(".") for part in file.relative_to(root).parts[:-1])


MULTI_FRAME_EXTS = {".gif", ".png", ".webp", ".tif", ".tiff"}  # kinds that may hold more than one picture


def is_multi_frame(image: Path | np.ndarray) -> bool:
    """Whether an image file (its path, or its bytes already read) holds more frames than the one
    read: an animation, a multi-page TIFF."""
    import io

    from PIL import Image

    try:
        with Image.open(image if isinstance(image, Path) else io.BytesIO(image.tobytes())) as im:
            return bool(getattr(im, "is_animated", False))
    except Exception:  # noqa: BLE001 - only a note depends on it; the image itself was read
        return False


HEIF_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis")  # ftyp brands of HEIC/HEIF stills


def _is_heif(data: np.ndarray) -> bool:
    """Whether the bytes are an ISO-BMFF still image (HEIC/HEIF, as phones save), by its ftyp box."""
    return data[4:8].tobytes() == b"ftyp" and data[8:12].tobytes() in HEIF_BRANDS


class ImageSource(FrameSource):
    """One image file, or every image in a folder (sorted; ``recursive``: its sub-folders too).

    Each frame is named by its path relative to the folder; unreadable images are skipped and
    counted. ``notes`` says what was left out on purpose (sub-folders, without ``recursive``)."""

    live = False

    def __init__(self, path: str | Path, recursive: bool = False):
        path = Path(path)
        self.name = str(path)
        self.notes: list[str] = []
        if path.is_dir():
            files = sorted(p for p in (path.rglob("*") if recursive else path.iterdir()) if p.is_file())
            if recursive:  # not a run's own outputs (annotated copies) kept inside the folder
                runs = [p.parent for p in files if p.name == "run.json" and p.parent != path]
                files = [p for p in files if not any(d in p.parents for d in runs) and not _hidden(p, path)]
                if runs:
                    self.notes.append(
                        f"{len(runs)} folder(s) holding a tiltwatch run's outputs left out "
                        f"(e.g. {runs[0].relative_to(path)})"
                    )
            self.paths = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
            self.names = [str(p.relative_to(path)) for p in self.paths]
            others = [p for p in files if p.suffix.lower() not in IMAGE_EXTS and not p.name.startswith(".")]
            if others:
                self.notes.append(
                    f"{len(others)} file(s) that are not images by their extension left out "
                    f"(e.g. {others[0].relative_to(path)})"
                )
            subfolders = [p for p in path.iterdir() if p.is_dir()] if not recursive else []
            if subfolders:
                self.notes.append(
                    f"{len(subfolders)} sub-folder(s) of {path} skipped (e.g. {subfolders[0].name}); "
                    "pass --recursive to analyse them too"
                )
            if not self.paths:
                raise InputError(
                    f"{path}: folder holds no images ({', '.join(sorted(IMAGE_EXTS))})"
                    + ("; it has sub-folders: pass --recursive" if subfolders else "")
                )
        self.skipped: list[str] = []
        self.first_frame_only: list[str] = []  # animated images and multi-page TIFFs met so far
        self._single = None  # the one image of a single file, read at once
        if not path.is_dir():
            self.paths, self.names = [path], [path.name]
            data = _file_bytes(path)  # one file: fail now, before any model loads
            self._single = decode_image(data, str(path))
            self._note_frames(data, path.name)
        self.total = len(self.paths)
        self.fps = None

    def __iter__(self) -> Iterator[Frame]:
        for i, (p, name) in enumerate(zip(self.paths, self.names)):
            if self._single is not None:
                img = self._single
            else:
                try:
                    data = _file_bytes(p)  # read once: decoded, then looked at for more frames
                    img = decode_image(data, str(p))
                except InputError as exc:
                    self.skipped.append(str(exc))  # (reported once, by whoever runs the source)
                    continue
                self._note_frames(data, name)
            yield Frame(index=i, timestamp=float(i), image=img, name=name)

    def _note_frames(self, data: np.ndarray, name: str) -> None:
        if Path(name).suffix.lower() in MULTI_FRAME_EXTS and is_multi_frame(data):
            self.first_frame_only.append(name)
