"""The live dashboard in a real browser: real server (uvicorn, subprocess), real sample stream, headless Chromium.

The site config written here has a tilt rule on *happiness* (threshold 0.5, release 0.3, 1 s):
the sample's faces are the smiling astronaut, so the real pipeline raises real tilt alerts
within seconds. The Photo tab analyses an uploaded photo (the same astronaut, still) through
``/api/v1/analyze/image``. Set ``TILTWATCH_SCREENSHOT=1`` to save ``docs/dashboard.png``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
    pytest.skip(
        "needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
        allow_module_level=True,
    )
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.selenium_manager import SeleniumManager  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tiltwatch.store import Store  # noqa: E402

from .conftest import HAPPY_TILT_SITE  # noqa: E402

KEY = "dashboard-key-0123456789abcdef"
BURST_KEY = "burst-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]
SITE = HAPPY_TILT_SITE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, key: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@contextmanager
def running_server(tmp: Path, *args: str):
    """``python -m tiltwatch.server`` on a free port with the sample stream; killed if still up at the end."""
    port = _free_port()
    log = open(tmp / "server.log", "w+")
    env = {**os.environ, "TILTWATCH_API_KEYS": f"{KEY},{BURST_KEY}", "PYTHONUNBUFFERED": "1"}
    env.pop("TILTWATCH_API_KEY_FILE", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tiltwatch.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            f"sqlite:///{tmp / 'tw.db'}",
            "--sample",
            "--data-dir",
            str(tmp / "data"),
            *args,
        ],
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if _get(base + "/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"the server did not start:\n{log.read()[-3000:]}")
            time.sleep(0.3)
        yield {"base": base, "proc": proc, "db": tmp / "tw.db", "log": log, "tmp": tmp}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    # Selenium Manager must not reach out (it did, to two hosts, on its own): the driver is given,
    # its usage statistics are off and it runs offline; should it run at all, the fixture fails.
    # Chromium resolves no name but the loopback's, so nothing of the test can leave the machine.
    os.environ.update({"SE_AVOID_STATS": "true", "SE_OFFLINE": "true"})
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)

    def no_selenium_manager(self, args):
        pytest.fail(f"Selenium Manager was started ({args}): it would look for drivers on the network")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SeleniumManager, "binary_paths", no_selenium_manager)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def zone_names(driver) -> list[str]:
    return [e.get_attribute("data-zone") for e in driver.find_elements(By.CSS_SELECTOR, "#mood .zone")]


def waiting(d, every: float = 0.25) -> WebDriverWait:
    """Up to 30 s; the live page redraws its lists on every frame, so an element found a moment
    before it is read may be gone: that read is tried again, as a missing element is."""
    return WebDriverWait(d, 30, poll_frequency=every, ignored_exceptions=(StaleElementReferenceException,))


def sign_in(d, base: str) -> WebDriverWait:
    d.get(base + "/")
    wait = waiting(d)
    key_input = wait.until(lambda d: (e := d.find_element(By.ID, "key-input")).is_displayed() and e)
    key_input.send_keys("wrong-key-0123456789")
    d.find_element(By.ID, "key-submit").click()
    wait.until(lambda d: "refused" in d.find_element(By.ID, "login-error").text)
    d.find_element(By.ID, "key-input").send_keys(KEY)
    d.find_element(By.ID, "key-submit").click()
    return wait


COUNTER = "return Number(document.querySelector('.stream[data-stream=sample] .frame-counter').textContent) || -1;"


def test_dashboard_live_view_alerts_and_clean_shutdown(tmp_path, browser):
    (tmp_path / "site.yaml").write_text(SITE)
    with running_server(tmp_path, "--site", str(tmp_path / "site.yaml"), "--allow-frames") as server:
        live_view_alerts_and_shutdown(server, browser)


def live_view_alerts_and_shutdown(server: dict, d) -> None:
    wait = sign_in(d, server["base"])

    # annotated frames appear and keep coming
    img_ok = "const i = document.querySelector('.stream[data-stream=sample] img.live'); return !!i && i.naturalWidth;"
    assert wait.until(lambda d: _js(d, img_ok)) == 960
    counter = COUNTER
    first = wait.until(lambda d: (n := _js(d, counter)) >= 0 and n + 1) - 1
    wait.until(lambda d: _js(d, counter) > first + 5)
    pixels = """const i = document.querySelector('.stream[data-stream=sample] img.live');
        const c = document.createElement('canvas'); c.width = 96; c.height = 54;
        const g = c.getContext('2d'); g.drawImage(i, 0, 0, 96, 54);
        return Array.from(g.getImageData(0, 0, 96, 54).data).join(',');"""
    before = _js(d, pixels)
    wait.until(lambda d: _js(d, pixels) != before)  # the picture itself changes (the sample moves)

    # a real tilt alert (smiling astronaut, happiness rule) reaches the feed
    waiting(d, every=0.5).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#alerts li"))
    assert "tilt" in wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#alerts li").text)

    # mood per zone, from the WebSocket frames
    zones = wait.until(lambda d: zone_names(d))
    assert set(zones) <= {"table-1", "table-2"} and zones
    valence = float(wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#mood .zone .zone-valence").text))
    assert valence > 0.3  # happy faces: positive valence

    # a burst of API calls (another key: its own rate-limit bucket) does not stall the live stream
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: _get(server["base"] + "/api/v1/streams", BURST_KEY)[0], range(60)))
    assert codes.count(200) == 60
    after_burst = _js(d, counter)
    wait.until(lambda d: _js(d, counter) > after_burst + 3)

    # visit timelines (stored visits, drawn as SVG)
    waiting(d, every=0.5).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#visits svg .visit-bar"))
    if os.environ.get("TILTWATCH_SCREENSHOT") == "1":  # for the README: let visits and alerts pile up first
        time.sleep(20)
        d.set_window_size(1400, 1250)
        time.sleep(0.5)
        (ROOT / "docs").mkdir(exist_ok=True)
        d.save_screenshot(str(ROOT / "docs" / "dashboard.png"))

    status, body = _get(server["base"] + "/api/v1/streams/sample", KEY)
    assert status == 200 and json.loads(body)["state"] == "running"

    # SIGTERM: streams stop, open visits and alerts are closed and stored, the store is flushed
    d.get("about:blank")
    proc = server["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=40) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once shut down
    server["log"].seek(0)
    log = server["log"].read()
    assert "Application shutdown complete" in log
    assert KEY not in log and BURST_KEY not in log, "an API key reached the log"
    assert "key=***" in log  # the MJPEG URL's key, masked in the access log
    with Store(f"sqlite:///{server['db']}") as store:
        visits = store.visits(camera="sample")
        assert visits and all(v.closed for v in visits)
        assert any(a.kind == "tilt" for a in store.alerts(camera="sample"))


def test_dashboard_without_frames_draws_boxes_from_live_data(tmp_path, browser):
    with running_server(tmp_path) as server:  # no --allow-frames, no site config
        d = browser
        wait = sign_in(d, server["base"])
        canvas = "return document.querySelector('.stream[data-stream=sample] canvas.live');"
        wait.until(lambda d: _js(d, canvas))
        assert not d.find_elements(By.CSS_SELECTOR, ".stream img.live")
        first = wait.until(lambda d: (n := _js(d, COUNTER)) >= 0 and n + 1) - 1
        wait.until(lambda d: _js(d, COUNTER) > first + 3)
        drawn = """const c = document.querySelector('.stream[data-stream=sample] canvas.live');
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let boxes = 0;
            for (let i = 0; i < px.length; i += 4) if (px[i + 1] > 150 && px[i] < 100) boxes++;  // happiness green
            return [c.width, boxes];"""
        width, boxes = wait.until(lambda d: (r := _js(d, drawn))[1] > 100 and r)
        assert width == 960
        zones = wait.until(lambda d: zone_names(d))
        assert zones == ["sample"]  # no site config: the stream is the zone
        status = (
            "return fetch('/api/v1/streams/sample/frame.jpg', {headers: {'X-API-Key': arguments[0]}})"
            ".then(r => r.status);"
        )
        assert _js(d, status, KEY) == 403
        d.get("about:blank")


def test_dashboard_photo_page_analyses_an_uploaded_photo(tmp_path, browser):
    """The Photo tab: a real face photo, sent through the file input, is analysed by the real
    server and shown annotated beside its table of faces; a file that is not an image shows the
    server's error line."""
    from PIL import Image
    from skimage import data

    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(photo, quality=92)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image\n")
    with running_server(tmp_path) as server:
        d = browser
        wait = sign_in(d, server["base"])
        tab = wait.until(lambda d: (e := d.find_element(By.ID, "tab-photo")).is_displayed() and e)
        assert d.find_element(By.ID, "app").is_displayed() and not d.find_element(By.ID, "photo").is_displayed()
        tab.click()
        file_input = wait.until(lambda d: (e := d.find_element(By.ID, "photo-input")).is_displayed() and e)
        assert not d.find_element(By.ID, "app").is_displayed()  # the live view is behind the other tab
        file_input.send_keys(str(photo))

        rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#photo-faces tbody tr"))
        assert len(rows) == 1
        cell = lambda name: rows[0].find_element(By.CSS_SELECTOR, f"td.{name}").text  # noqa: E731
        assert cell("face-no") == "1"
        assert cell("label") == "happiness"  # the astronaut smiles
        probs = {
            name: float(cell(f"p-{name}").rstrip("%"))
            for name in ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
        }
        assert all(cell(f"p-{n}").endswith("%") for n in probs)
        assert probs["happiness"] > 50 and abs(sum(probs.values()) - 100) < 1
        pose = [float(cell(a)) for a in ("yaw", "pitch", "roll")]  # numbers, in degrees
        assert all(abs(a) < 90 for a in pose)
        assert "1 face" in d.find_element(By.ID, "photo-count").text
        assert d.find_element(By.ID, "photo-error").text == ""

        _check_the_drawing(d, wait, server["base"], photo)
        _check_bad_files(d, wait, tmp_path, notes)
        _check_a_dropped_photo(d, wait, photo)

        # and back to the live view by its tab
        d.find_element(By.ID, "tab-live").click()
        wait.until(lambda d: d.find_element(By.ID, "app").is_displayed())
        assert not d.find_element(By.ID, "photo").is_displayed()
        d.get("about:blank")


def _check_the_drawing(d, wait, base: str, photo: Path) -> None:
    """The canvas over the image: the image's size, transparent but for the drawing, which is the
    happiness box around the face and the head-pose axes inside it."""
    shown = "const i = document.getElementById('photo-img');return i.complete && [i.naturalWidth, i.naturalHeight];"
    img_size = wait.until(lambda d: (size := _js(d, shown)) and size[0] and size)
    assert img_size == [512, 512]
    drawn = """const c = document.getElementById('photo-canvas');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const [x, y, w, h] = arguments[0];
        let green = 0, inside = 0, outside = 0;
        for (let j = 0; j < c.height; j++) for (let i = 0; i < c.width; i++) {
          const k = 4 * (j * c.width + i);
          if (px[k + 3] === 0) continue;
          if (i < x - 4 || j > y + h + 4) outside++;  // left of or below the box (the label is above it)
          else if (i > x + 5 && i < x + w - 5 && j > y + 5 && j < y + h - 5) inside++;
          else if (px[k + 1] > 150 && px[k] < 100 && px[k + 2] < 100) green++;
        }
        return [c.width, c.height, green, inside, outside];"""
    answer = _post_image(base, photo)
    assert len(answer["faces"]) == 1 and answer["faces"][0]["emotion"]["label"] == "happiness"
    box = answer["faces"][0]["box"]
    width, height, green, inside, outside = _js(d, drawn, box)
    assert (width, height) == (512, 512)
    assert green > 4 * box[2]  # the box's four sides (and its label) in the happiness colour
    assert inside > 50  # the pose axes from the box centre
    assert outside == 0  # nothing drawn away from the face: the photo itself shows through there


def _check_bad_files(d, wait, tmp_path: Path, notes: Path) -> None:
    """Not an image: the server's one-line error (415) in the page, the last result cleared; an
    image's name but not an image's bytes: the decoder's error (422)."""
    d.find_element(By.ID, "photo-input").send_keys(str(notes))
    error = wait.until(lambda d: d.find_element(By.ID, "photo-error").text)
    assert "unsupported file type" in error and "notes.txt" in error and "\n" not in error
    assert not d.find_element(By.ID, "photo-result").is_displayed()
    # an image's name but not an image's bytes: the decoder's error (422)
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"this is not a JPEG")
    d.find_element(By.ID, "photo-input").send_keys(str(fake))
    wait.until(lambda d: "not a decodable image" in d.find_element(By.ID, "photo-error").text)


def _check_a_dropped_photo(d, wait, photo: Path) -> None:
    """Dropped onto the drop zone (a drop event carrying the photo as a File, as a drag from the desktop does)."""
    drop = """const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.jpg', {type: 'image/jpeg'}));
        document.getElementById('drop-zone').dispatchEvent(
            new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));"""
    _js(d, drop, base64.b64encode(photo.read_bytes()).decode())
    wait.until(lambda d: d.find_element(By.ID, "photo-result").is_displayed())
    assert "dropped.jpg" in d.find_element(By.ID, "photo-name").text
    assert d.find_element(By.ID, "photo-error").text == ""
    assert d.find_element(By.CSS_SELECTOR, "#photo-faces tbody tr td.label").text == "happiness"


def _post_image(base: str, path: Path) -> dict:
    """POST one image to /api/v1/analyze/image the way any client does (multipart, the API key)."""
    boundary = "tiltwatch-test-boundary"
    body = (
        (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        base + "/api/v1/analyze/image",
        data=body,
        method="POST",
        headers={"X-API-Key": KEY, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())
