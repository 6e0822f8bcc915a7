"""Bad and odd inputs: a clear one-line error naming the input, or a run that skips and finishes."""

import av
import cv2
import numpy as np
import pytest

from tiltwatch import InputError
from tiltwatch.sources import ImageSource, SampleSource, StreamSource, VideoFileSource, open_source, read_image, to_bgr8


def write_video(path, frames, fps=15, display_rotation=0):
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        if display_rotation:
            s.set_display_rotation(display_rotation)  # what a phone writes for a portrait clip
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.mark.parametrize(
    "convert",
    [
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY),  # greyscale
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2BGRA),  # alpha
        lambda im: im.astype(np.uint16) * 257,  # 16-bit
        lambda im: im.astype(np.float32) / 255,  # float in [0, 1]
    ],
)
def test_odd_image_kinds_still_find_the_face(analyzer, astronaut, convert):
    faces = analyzer.analyze(convert(astronaut)).faces
    assert len(faces) == 1 and faces[0].emotion is not None


# how a phone stores an upright picture, and the tag that tells a viewer to turn it back
LYING = {
    6: cv2.ROTATE_90_COUNTERCLOCKWISE,  # EXIF 6: show it turned 90 degrees clockwise
    8: cv2.ROTATE_90_CLOCKWISE,  # EXIF 8: 90 degrees counter-clockwise
    3: cv2.ROTATE_180,
}


@pytest.mark.parametrize("orientation", sorted(LYING))
def test_phone_photos_are_read_upright(tmp_path, analyzer, astronaut, orientation):
    """A portrait photo from a phone lies on its side in the file, with an EXIF orientation:
    read as a viewer shows it, the face is found upright (its roll small), not sideways."""
    from PIL import Image

    im = Image.fromarray(cv2.cvtColor(cv2.rotate(astronaut, LYING[orientation]), cv2.COLOR_BGR2RGB))
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.jpg"
    im.save(path, exif=exif.tobytes(), quality=95)
    image = read_image(path)
    assert image.shape == astronaut.shape and np.abs(image.astype(int) - astronaut).mean() < 6
    faces = analyzer.analyze(image).faces
    assert len(faces) == 1 and abs(faces[0].pose.roll) < 15


@pytest.mark.parametrize("rotation", [90, 180, -90])
def test_phone_clips_are_read_upright(tmp_path, astronaut, rotation):
    """A phone's portrait clip is stored lying down with a display rotation (counter-clockwise
    degrees) that players apply: video files and streams give its frames upright."""
    turn = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, -90: cv2.ROTATE_90_COUNTERCLOCKWISE}[rotation]
    clip = tmp_path / "phone.mp4"
    write_video(clip, [cv2.rotate(astronaut, turn)] * 3, display_rotation=rotation)
    for source in (VideoFileSource(clip), StreamSource(str(clip), drop_frames=False)):
        first = next(iter(source))
        source.close()
        assert np.abs(first.image.astype(int) - astronaut).mean() < 8, source


@pytest.mark.parametrize(
    "image,msg",
    [
        (np.zeros((0, 0, 3), np.uint8), "empty image"),
        (np.zeros((1, 1, 3), np.uint8), "too small"),
        (np.zeros((64, 64, 5), np.uint8), "unsupported image shape"),
        (np.zeros((64, 64), np.int64), "unsupported pixel type"),
        ("not an array", "expected a numpy image array"),
    ],
)
def test_unusable_arrays_are_refused_clearly(image, msg):
    with pytest.raises(InputError, match=msg):
        to_bgr8(image, "frame")


def test_unreadable_files_name_the_file(tmp_path, astronaut):
    with pytest.raises(InputError, match="missing.png: no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="empty.jpg: empty file"):
        read_image(tmp_path / "empty.jpg")
    (tmp_path / "text.png").write_text("hello, not an image")
    with pytest.raises(InputError, match="text.png: not an image or corrupt"):
        read_image(tmp_path / "text.png")
    ok, buf = cv2.imencode(".jpg", astronaut)
    (tmp_path / "cut.jpg").write_bytes(buf.tobytes()[:200])  # truncated JPEG
    with pytest.raises(InputError, match="cut.jpg"):
        read_image(tmp_path / "cut.jpg")
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(InputError, match="tiny.png: image is 1x1"):
        read_image(tiny)


def test_folder_skips_and_counts_what_it_cannot_read(tmp_path, astronaut):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut)
    (tmp_path / "b.png").write_text("broken")
    cv2.imwrite(str(tmp_path / "c.jpg"), cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    src = ImageSource(tmp_path)
    frames = list(src)
    assert [f.name for f in frames] == ["a.png", "c.jpg"]
    assert len(src.skipped) == 1 and "b.png" in src.skipped[0]
    assert src.notes == ["1 file(s) that are not images by their extension left out (e.g. notes.txt)"]


def test_phone_folders_heic_and_avif(tmp_path, analyzer, astronaut, monkeypatch):
    """A phone's folder: HEIC photos (read with the heic extra's pillow-heif), an AVIF, and the
    clips beside them left out with a note, not silently."""
    import sys

    import pillow_heif
    from PIL import Image

    rgb = Image.fromarray(cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB))
    pillow_heif.from_pillow(rgb).save(tmp_path / "IMG_0001.HEIC", quality=90)
    rgb.save(tmp_path / "IMG_0002.avif", quality=90)
    (tmp_path / "IMG_0003.MOV").write_bytes(b"\0" * 64)
    src = ImageSource(tmp_path)
    frames = list(src)
    assert [f.name for f in frames] == ["IMG_0001.HEIC", "IMG_0002.avif"] and not src.skipped
    assert "1 file(s) that are not images" in src.notes[0] and "IMG_0003.MOV" in src.notes[0]
    for f in frames:
        assert np.abs(f.image.astype(int) - astronaut).mean() < 6
        assert len(analyzer.analyze(f.image).faces) == 1
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as where the extra is not installed
    with pytest.raises(InputError, match=r"IMG_0001.HEIC: a HEIC/HEIF photo; .*pip install 'tiltwatch\[heic\]'"):
        read_image(tmp_path / "IMG_0001.HEIC")


def test_empty_folder_and_unknown_source(tmp_path):
    with pytest.raises(InputError, match="folder holds no images"):
        ImageSource(tmp_path)
    with pytest.raises(InputError, match="no such file or folder"):
        open_source(str(tmp_path / "nothing.mp4"))


def test_video_with_broken_frames_is_read_to_the_end(tmp_path):
    clip = tmp_path / "clip.mp4"
    frames = [SampleSource().render(i) for i in range(0, 60, 2)]
    write_video(clip, frames)
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(0)
    for pos in rng.integers(len(data) // 3, len(data) * 2 // 3, 40):  # garbage in the middle
        data[pos : pos + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    src = VideoFileSource(broken)
    got = list(src)
    assert 0 < len(got) <= len(frames)
    assert all(f.image.shape == frames[0].shape for f in got)


def test_annotated_video_round_trip_keeps_the_colours(tmp_path):
    """Frames written by the video sink and read back by the video source (both convert between
    BGR and YUV with OpenCV) look like what went in, as they do through FFmpeg's own converter."""
    from tiltwatch.sinks import AnnotatedVideoSink
    from tiltwatch.sources.base import Frame
    from tiltwatch.types import FrameResult

    frames = [SampleSource().render(i) for i in range(0, 20, 2)]
    sink = AnnotatedVideoSink(tmp_path / "a.mp4", fps=10, crf=12)
    for i, img in enumerate(frames):
        sink.write(
            Frame(i, i / 10, img),
            FrameResult(index=i, timestamp=i / 10, width=img.shape[1], height=img.shape[0], faces=[]),
        )
    sink.close()
    got = [f.image for f in VideoFileSource(tmp_path / "a.mp4")]
    assert len(got) == len(frames)
    assert np.abs(got[5].astype(int) - frames[5]).mean() < 3  # lossy H.264 at crf 12, colours in place
    with av.open(str(tmp_path / "a.mp4")) as c:  # FFmpeg's own conversion of the same frame agrees
        ref = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)][5]
    assert np.abs(got[5].astype(int) - ref).mean() < 2


def test_not_a_video_is_refused(tmp_path):
    bad = tmp_path / "fake.mp4"
    bad.write_text("this is text")
    with pytest.raises(InputError, match="fake.mp4: cannot open as video"):
        VideoFileSource(bad)


def test_camera_that_cannot_be_opened():
    with pytest.raises(InputError, match="camera 99: cannot open stream"):
        StreamSource(99)


def test_stream_that_drops_gives_up_after_retries(tmp_path):
    clip = tmp_path / "live.mp4"
    write_video(clip, [SampleSource().render(i) for i in range(10)])
    src = StreamSource(str(clip), max_retries=2, backoff=0.05, drop_frames=False)
    clip.unlink()  # the "camera" goes away once its buffered frames are read: reconnects fail
    frames = list(src)
    assert len(frames) == 10
    assert src.skipped and "gave up after 2 reconnects" in src.skipped[0]


def _clip_frames(n=8, size=(320, 180)):
    return [cv2.resize(SampleSource().render(i), size) for i in range(0, 2 * n, 2)]


def test_video_times_start_at_its_first_frame(tmp_path):
    """A segment cut from a recording (a DVR's .ts) starts at some hour: times count from its
    first frame, as ``--start-time`` says, not from the recorder's clock."""
    clip = tmp_path / "segment.mkv"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=15)
        s.width, s.height, s.pix_fmt = 320, 180, "yuv420p"
        for i, img in enumerate(_clip_frames()):
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts = 3600 * 15 + i  # an hour into the recording
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    times = [f.timestamp for f in VideoFileSource(clip)]
    assert times[0] == 0 and times[1] == pytest.approx(1 / 15, abs=1e-3) and len(times) == 8


def test_the_main_picture_not_a_cover_image(tmp_path):
    """A file whose first video stream is a small still (cover art, a thumbnail) and the clip behind it."""
    clip, frames = tmp_path / "with_cover.mkv", _clip_frames(size=(480, 270))
    with av.open(str(clip), "w") as c:
        art = c.add_stream("mjpeg", rate=1)
        art.width, art.height, art.pix_fmt = 160, 90, "yuvj420p"
        v = c.add_stream("libx264", rate=15)
        v.width, v.height, v.pix_fmt = 480, 270, "yuv420p"
        for p in [
            *art.encode(av.VideoFrame.from_ndarray(cv2.resize(frames[0], (160, 90)), format="bgr24")),
            *art.encode(),
        ]:
            c.mux(p)
        for img in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    got = list(VideoFileSource(clip))
    assert len(got) == len(frames) and got[0].image.shape == (270, 480, 3)


def test_full_range_video_keeps_its_colours(tmp_path):
    """yuv420p flagged full range (as some phones, screen recorders and VP9 write) is decoded with
    the full-range matrix, not stretched as video range."""
    from av.video.reformatter import ColorRange

    clip, frames = tmp_path / "full.webm", _clip_frames()
    with av.open(str(clip), "w") as c:  # (H.264 says full range by its own pixel format, yuvj420p)
        s = c.add_stream("libvpx-vp9", rate=15, options={"crf": "10", "deadline": "realtime"})
        s.width, s.height, s.pix_fmt = 320, 180, "yuv420p"
        s.codec_context.color_range = ColorRange.JPEG
        for img in frames:
            vf = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(
                format="yuv420p", dst_color_range=ColorRange.JPEG
            )
            vf.color_range = ColorRange.JPEG
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    got = list(VideoFileSource(clip))
    assert np.abs(got[3].image.astype(int) - frames[3]).mean() < 3


def test_videos_that_cannot_hold_a_face_are_refused_up_front(tmp_path):
    tiny = tmp_path / "tiny.mkv"
    write_video(tiny, [np.full((8, 8, 3), 128, np.uint8)] * 3)
    with pytest.raises(InputError, match=r"tiny.mkv: video is 8x8, too small to hold a face \(min 16px\)$"):
        VideoFileSource(tiny)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.mp4: empty file$"):
        VideoFileSource(tmp_path / "empty.mp4")
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(
        InputError, match=r"text.mp4: cannot open as video \(Invalid data found when processing input\)$"
    ):
        VideoFileSource(tmp_path / "text.mp4")


def test_animations_and_pages(tmp_path, astronaut):
    """An animated GIF or PNG given alone is read as a clip, every frame; in a folder (and animated
    WebP, multi-page TIFF) only the first frame is, and the source says which files those were."""
    from PIL import Image

    pictures = [Image.fromarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for f in _clip_frames(6)]
    pictures[0].save(tmp_path / "anim.gif", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    pictures[0].save(tmp_path / "anim.png", save_all=True, append_images=pictures[1:], duration=100)
    blank = Image.new("RGB", (200, 200))
    blank.save(tmp_path / "pages.tif", save_all=True, append_images=[Image.fromarray(astronaut[:, :, ::-1])])
    for name in ("anim.gif", "anim.png"):
        src = open_source(str(tmp_path / name))
        frames = list(src)
        assert isinstance(src, VideoFileSource) and len(frames) == 6, name
        assert frames[1].timestamp == pytest.approx(0.1, abs=0.01)
    src = open_source(str(tmp_path))
    assert len(list(src)) == 3 and src.first_frame_only == ["anim.gif", "anim.png", "pages.tif"]
    one = ImageSource(tmp_path / "pages.tif")
    assert len(list(one)) == 1 and one.first_frame_only == ["pages.tif"]


def test_a_folder_of_one_image_and_floats_in_0_255(tmp_path, astronaut):
    (tmp_path / "album").mkdir()
    cv2.imwrite(str(tmp_path / "album" / "only.png"), astronaut)
    assert [f.name for f in ImageSource(tmp_path / "album")] == ["only.png"]
    as_floats = to_bgr8(astronaut.astype(np.float32), "frame")  # 8-bit values kept as floats (a float TIFF)
    assert np.array_equal(as_floats, astronaut)


def test_a_clip_under_an_image_name_is_read_as_a_clip(tmp_path):
    write_video(tmp_path / "clip.mp4", _clip_frames())
    clip = (tmp_path / "clip.mp4").rename(tmp_path / "clip.jpg")
    src = open_source(str(clip))
    assert isinstance(src, VideoFileSource) and len(list(src)) == 8
    (tmp_path / "notes.png").write_text("not an image, nor a clip")
    with pytest.raises(InputError, match=r"notes.png: not an image or corrupt$"):
        open_source(str(tmp_path / "notes.png"))
