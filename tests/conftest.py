"""Shared fixtures: one Analyzer for the session (models load once) and a real face."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
from skimage import data

from tiltwatch import Analyzer


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real frontal face (public-domain NASA portrait shipped with scikit-image), BGR."""
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    """Tracking off, so tests can share it in any order."""
    return Analyzer(track=False, smooth_tau=0)


def rotate(image: np.ndarray, degrees: float, centre: tuple[float, float]) -> np.ndarray:
    """Rotate counter-clockwise (OpenCV's convention) about ``centre``."""
    m = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def tiltwatch(*args) -> subprocess.CompletedProcess:
    """Run the real ``tiltwatch`` command, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "tiltwatch", *map(str, args)], capture_output=True, text=True, timeout=600
    )


#: A two-table site for the sample stream whose "tilt" rule fires on sustained happiness: the
#: sample's faces smile, so the server and dashboard tests see real alerts within seconds. Its
#: baseline is off: a steady smile is the faces' resting expression, which a baseline excuses.
HAPPY_TILT_SITE = """\
site: test floor
cameras:
  - id: sample
    zones:
      - {name: table-1, kind: table, polygon: [[0, 0], [480, 0], [480, 540], [0, 540]]}
      - {name: table-2, kind: table, polygon: [[480, 0], [960, 0], [960, 540], [480, 540]]}
alerts:
  tilt: {emotions: [happiness], threshold: 0.5, release: 0.3, seconds: 1}
baseline: {enabled: false}
"""


@pytest.fixture(scope="module")
def cluster():
    """A real two-node Ray cluster on loopback, one per test module (the cluster tests)."""
    from tiltwatch.cluster.local import LocalCluster

    c = LocalCluster(nodes=2, cpus_per_node=2)
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def make_clip(path):
    """2 s of the sample at 480x270, 15 fps, H.264."""
    import av

    from tiltwatch.sources import SampleSource

    src = SampleSource(seconds=2, fps=15, size=(480, 270))
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=15)
        s.width, s.height, s.pix_fmt = 480, 270, "yuv420p"
        for frame in src:
            for p in s.encode(av.VideoFrame.from_ndarray(frame.image, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path
