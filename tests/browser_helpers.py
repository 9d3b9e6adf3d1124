"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``): stdlib only.

``open_page(path)`` loads a local HTML file and returns what a reader's browser saw: console errors and
uncaught exceptions, each image's decoded size and pixel range, and a PNG screenshot of the first screen.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: the browsers tried, in order (Debian's package installs ``chromium``)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
#: the first screen a reader sees (CSS pixels)
SCREEN = (1280, 800)

#: per image: natural size and the range of its pixel values after decoding (0: one flat colour)
IMAGE_PROBE = """
(async () => Promise.all(Array.from(document.images).map(async (img) => {
  try { await img.decode(); } catch (e) { return {ok: false, width: 0, height: 0, range: 0}; }
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let low = 255, high = 0;
  for (let i = 0; i < data.length; i += 4) { low = Math.min(low, data[i], data[i + 1], data[i + 2]);
                                             high = Math.max(high, data[i], data[i + 1], data[i + 2]); }
  return {ok: true, width: img.naturalWidth, height: img.naturalHeight, range: high - low};
})))()
"""


def browser() -> str | None:
    """Path of an installed Chromium, or None."""
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


@dataclass
class Page:
    errors: list[str]
    images: list[dict]
    screenshot: bytes


class _Pipe:
    def __init__(self, executable: str, profile: str):
        to_browser_read, self.to_browser = os.pipe()
        self.from_browser, from_browser_write = os.pipe()

        def child_fds():  # the protocol pipe must be fds 3 (commands in) and 4 (messages out)
            commands, messages = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_read, from_browser_write))
            os.dup2(commands, 3)
            os.dup2(messages, 4)

        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--no-first-run", "--hide-scrollbars", "about:blank"],
            preexec_fn=child_fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)  # its own group: its helpers die with it
        os.close(to_browser_read)
        os.close(from_browser_write)
        self.buffer, self.next_id, self.events = b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.receive(timeout)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def receive(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise TimeoutError("the browser did not answer")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed the pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self.receive(timeout)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        """Stop the browser and every helper process it started (they write into the profile folder, which
        :func:`open_page` removes next)."""
        try:
            self.send("Browser.close", timeout=10)  # a clean exit: the browser stops its helpers itself
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever is left of the browser's process group
        except ProcessLookupError:
            pass
        self.process.wait()
        os.close(self.to_browser)
        os.close(self.from_browser)


@contextlib.contextmanager
def _profile_folder(attempts: int = 100):
    """A temporary browser profile folder, removed afterwards; a helper process of the browser killed a moment
    ago may still be writing its last file there, so removal is retried (0.1 s apart) before it fails."""
    profile = tempfile.mkdtemp(prefix="simkit-browser-")
    try:
        yield profile
    finally:
        for attempt in range(attempts):
            try:
                shutil.rmtree(profile)
                break
            except OSError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.1)


def open_page(path: Path, executable: str) -> Page:
    """Load ``path`` in a fresh headless browser and report what it saw."""
    with _profile_folder() as profile:
        pipe = _Pipe(executable, profile)
        try:
            target = next(t for t in pipe.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
            session = pipe.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Emulation.setDeviceMetricsOverride", {"width": SCREEN[0], "height": SCREEN[1],
                                                             "deviceScaleFactor": 1, "mobile": False}, session)
            pipe.send("Page.navigate", {"url": Path(path).resolve().as_uri()}, session)
            pipe.wait_for("Page.loadEventFired")
            probe = pipe.send("Runtime.evaluate", {"expression": IMAGE_PROBE, "awaitPromise": True,
                                                   "returnByValue": True}, session)
            shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session)
            errors = []
            for event in pipe.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Runtime.exceptionThrown":
                    errors.append(params["exceptionDetails"].get("text", "exception"))
                elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                    errors.append(str(params.get("args")))
                elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                    errors.append(params["entry"]["text"])
            return Page(errors, probe["result"]["value"], base64.b64decode(shot["data"]))
        finally:
            pipe.close()
