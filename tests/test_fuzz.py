"""Property-based: whatever bytes, shapes or YAML a user brings, the answer is a result or one clear
line (a TiltwatchError), never a traceback. Bounded in examples, no deadline (any machine)."""

import io
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from tiltwatch import TiltwatchError
from tiltwatch.analytics.site import load_site
from tiltwatch.sources.images import read_image, to_bgr8

# derandomize: the same examples on every machine and run (a test may not hang on a seed); database
# off: nothing remembered between runs
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

DTYPES = st.sampled_from(
    [np.uint8, np.uint16, np.int8, np.int32, np.float16, np.float32, np.float64, np.bool_, np.complex64]
)


def one_line(exc: BaseException) -> bool:
    return bool(str(exc)) and "\n" not in str(exc)


@SETTINGS
@given(arrays(DTYPES, array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40)))
def test_any_array_becomes_bgr8_or_one_line_error(image):
    try:
        out = to_bgr8(image, "frame")
    except TiltwatchError as exc:
        assert one_line(exc)
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.flags.c_contiguous


def _png(h: int, w: int, channels: int) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.zeros((h, w, channels), np.uint8))
    return buf.tobytes()


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.builds(
            lambda data, cut: data[:cut], st.sampled_from([_png(40, 40, 3), _png(64, 32, 4)]), st.integers(0, 400)
        ),
    ),
    st.sampled_from([".jpg", ".png", ".bmp", ".webp", ".tif", ".gif"]),
)
def test_any_file_bytes_read_as_an_image_or_one_line_error(tmp_path, data, suffix):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except TiltwatchError as exc:
        assert one_line(exc) and str(path) in str(exc)
        return
    assert image.dtype == np.uint8 and image.ndim == 3


@settings(SETTINGS, max_examples=25)
@given(st.integers(0, 100))
def test_a_video_cut_anywhere_reads_or_says_why(tmp_path, percent):
    from tiltwatch.sources.video import VideoFileSource

    from .test_robustness import write_video

    clip = tmp_path / "v.mp4"
    if not clip.exists():
        write_video(clip, 30)
    cut = tmp_path / f"cut{percent}.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) * percent // 100])
    try:
        source = VideoFileSource(cut)
    except TiltwatchError as exc:
        assert one_line(exc)
        return
    frames = sum(1 for _ in source)
    source.close()
    assert 0 <= frames <= 30
    if frames < 30:
        assert source.skipped, "a video read short must say so"


@settings(SETTINGS, max_examples=40)
@given(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6))
def test_a_video_with_changed_bytes_reads_or_says_why(tmp_path, changes):
    """A few bytes of a clip changed anywhere (header, tags, frames): frames or one line, never an
    exception of another kind (a tag's byte changed was a UnicodeDecodeError from PyAV)."""
    from tiltwatch.sources import open_source

    from .test_robustness import write_video

    clip = tmp_path / "v.mp4"
    if not clip.exists():
        write_video(clip, 30)
    data = bytearray(clip.read_bytes())
    for where, value in changes:
        data[int(where * len(data))] = value
    changed = tmp_path / "changed.mp4"
    changed.write_bytes(bytes(data))
    try:
        source = open_source(str(changed))
        frames = sum(1 for _ in source)
        source.close()
    except TiltwatchError as exc:
        assert one_line(exc)
        return
    assert 0 <= frames <= 60


def test_a_video_whose_tags_are_not_utf8_is_read(tmp_path):
    from tiltwatch.sources import open_source

    from .test_robustness import write_video

    clip = tmp_path / "v.mp4"
    write_video(clip, 10)
    data = clip.read_bytes()
    at = data.find(b"Lavf")  # the encoder's tag: a byte of Latin-1 in it
    (tmp_path / "latin1.mp4").write_bytes(data[:at] + b"Lav\xe9" + data[at + 4 :])
    assert sum(1 for _ in open_source(str(tmp_path / "latin1.mp4"))) == 10


YAML_TEXT = st.text(alphabet=string.printable + "éß€\u2028", max_size=300)
SITE_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2000) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            [
                "cameras",
                "id",
                "zones",
                "name",
                "kind",
                "polygon",
                "alerts",
                "tilt",
                "threshold",
                "release",
                "seconds",
                "detect_tiles",
                "x",
            ]
        ),
        inner,
        max_size=4,
    ),
    max_leaves=20,
)


@SETTINGS
@given(st.one_of(YAML_TEXT.map(str.encode), st.binary(max_size=300), SITE_LIKE.map(lambda d: _yaml(d).encode())))
def test_any_site_file_loads_or_is_one_line(tmp_path, data):
    path = tmp_path / "site.yaml"
    path.write_bytes(data)
    try:
        load_site(path)
    except TiltwatchError as exc:
        assert one_line(exc) and str(path) in str(exc)


def _yaml(data) -> str:
    import yaml

    buf = io.StringIO()
    yaml.safe_dump(data, buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"\x0c",
        b"cameras: [{id: a, zones: [{name: z, polygon: [[0, 0], [1, 1], [1, 0], [0, 1]]}]}]",
        b"\xff\xfe c\x00a\x00",
        b"cameras: !!python/object/apply:os.system [ls]",
    ],
)
def test_site_files_found_by_the_fuzzer_stay_one_line(tmp_path, data):
    path = tmp_path / "site.yaml"
    path.write_bytes(data)
    with pytest.raises(TiltwatchError) as err:
        load_site(path)
    assert one_line(err.value)
