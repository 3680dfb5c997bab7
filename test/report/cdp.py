"""A minimal Chrome DevTools Protocol client for tests: starts Debian's headless chromium
on a free port and drives one page over its websocket (websocket-client)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import websocket

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """Headless chromium with one page; collects console errors and exceptions.

    Args:
        profile (Path): an empty folder for the browser profile.
        timeout (float): seconds to wait for the browser and for each reply.
    """

    def __init__(self, profile: Path, timeout: float = 30.0):
        self.timeout = timeout
        self.errors: list[str] = []
        self.events: list[dict] = []
        self._id = 0
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",  # tests run as root in containers
                "--disable-gpu",
                "--no-first-run",
                "--mute-audio",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.time() + timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.time() > deadline:
                err = (
                    self.proc.stderr.read().decode(errors="replace")[-2000:]
                    if self.proc.poll() is not None
                    else ""
                )
                self.close()
                raise RuntimeError(f"chromium did not start: {err}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        self.ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True
        )
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")

    def _handle(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            self.errors.append(
                f"exception: {d.get('exception', {}).get('description', d.get('text'))}"
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            e = params["entry"]
            self.errors.append(f"log: {e['text']} {e.get('url', '')}")
        if method:
            self.events.append(msg)

    def send(self, method: str, **params) -> dict:
        """Send a command and return its result (events received meanwhile are kept)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self._handle(msg)

    def wait_event(self, method: str) -> dict:
        """Wait for the next event ``method`` (or return one already received)."""
        for i, msg in enumerate(self.events):
            if msg["method"] == method:
                return self.events.pop(i)
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            self._handle(msg)
            if msg.get("method") == method:
                self.events.remove(msg)
                return msg
        raise TimeoutError(f"no {method} within {self.timeout} s")

    def eval(self, expression: str):
        """Evaluate JavaScript in the page (promises awaited) and return its value."""
        res = self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression[:80]}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
