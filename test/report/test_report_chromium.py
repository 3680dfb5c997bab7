"""The report and the MUSHRA page in a real headless chromium (Chrome DevTools Protocol):
no console errors, every <audio> resolves, a scripted listener fills the sliders, the
BS.1534 rule (one slider at 100) is enforced, and the downloaded CSV parses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from test.report.conftest import HAVE_ANCHOR_TOOLS

pytest.importorskip("websocket", reason="websocket-client not installed (requirements-test.txt)")
from test.report.cdp import CHROMIUM, Chromium  # noqa: E402

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (bash tools/install_system_deps.sh)"
)

AUDIO_READY = """
Promise.all(Array.from(document.querySelectorAll('audio')).map(a => new Promise(resolve => {
  const done = () => resolve({src: a.getAttribute('src'), ready: a.readyState,
                              duration: a.duration, error: a.error ? a.error.code : null});
  if (a.readyState >= 1 || a.error) { done(); return; }
  a.addEventListener('loadedmetadata', done); a.addEventListener('error', done);
  if (a.preload === 'none') { a.load(); }
})))
"""

# A scripted listener: hidden reference 100, low-pass anchor 20, systems 40 + 5 * k.
FILL = """
(() => {
  const trial = window.mushra.trials[window.mushra.current()];
  document.querySelectorAll('input.rating').forEach((slider, k) => {
    const system = trial.stimuli[trial.order[k]].system;
    slider.value = system === 'hidden_reference' ? 100 : system === 'anchor_lp3.5kHz' ? 20 : 40 + 5 * k;
    slider.dispatchEvent(new Event('input', {bubbles: true}));
  });
  return document.querySelectorAll('input.rating').length;
})()
"""


@pytest.fixture
def browser(tmp_path: Path):
    b = Chromium(tmp_path / "profile")
    yield b
    b.close()


def _audio_ok(browser: Chromium, n_expected: int) -> None:
    audio = browser.eval(AUDIO_READY)
    assert len(audio) == n_expected
    bad = [a for a in audio if a["error"] is not None or a["ready"] < 1 or not a["duration"] > 0]
    assert not bad, bad


def test_index_page(report: Path, browser: Chromium):
    browser.open((report / "index.html").as_uri())
    n_points = 3 + (3 if HAVE_ANCHOR_TOOLS else 0)
    _audio_ok(browser, 2 * (1 + n_points))  # 2 utterances x (reference + points)
    images = browser.eval(
        "Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])"
    )
    assert len(images) == 3 and all(w > 0 for _, w in images), images
    assert browser.eval("document.querySelectorAll('table')[0].rows.length") == 1 + n_points
    assert browser.errors == []


def test_mushra_session(report: Path, browser: Chromium, tmp_path: Path):
    from codectk.report.mushra_stats import read_ratings, system_scores

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
    browser.open((report / "mushra.html").as_uri() + "?seed=7")
    n_points = 3 + (3 if HAVE_ANCHOR_TOOLS else 0)
    n_stimuli = 2 + n_points  # hidden reference, low-pass anchor, points
    _audio_ok(browser, 2 * (1 + n_stimuli))
    assert browser.eval("window.mushra.seed") == 7

    # No listener id: refused.
    browser.eval("document.getElementById('start').click()")
    assert browser.eval("document.getElementById('trial').hidden")
    browser.eval("document.getElementById('listener').value = 'tester, one'")
    browser.eval("document.getElementById('start').click()")
    assert not browser.eval("document.getElementById('trial').hidden")
    # A trial without a 100 cannot be left.
    browser.eval("document.getElementById('next').click()")
    assert browser.eval("window.mushra.current()") == 0
    assert "at least one" in browser.eval("document.getElementById('trial-msg').textContent")
    # Playing works (muted) and stops.
    browser.eval("document.querySelector('#stimuli button').click()")
    browser.eval("document.getElementById('stop').click()")
    for _ in range(2):
        assert browser.eval(FILL) == n_stimuli
        browser.eval("document.getElementById('next').click()")
    assert not browser.eval("document.getElementById('done').hidden")
    csv_text = browser.eval("window.mushra.csv()")
    browser.eval("document.getElementById('download').click()")
    deadline = time.time() + 20
    while not [f for f in downloads.glob("*.csv")] and time.time() < deadline:
        time.sleep(0.1)
    files = list(downloads.glob("*.csv"))
    assert [f.name for f in files] == ["mushra_codec_multi_tester__one.csv"]
    assert files[0].read_text() == csv_text
    assert browser.errors == []

    ratings = read_ratings(files)
    assert len(ratings) == 2 * n_stimuli and {r.listener for r in ratings} == {"tester, one"}
    scores = system_scores(ratings)
    assert scores["hidden_reference"]["mean"] == 100 and scores["anchor_lp3.5kHz"]["mean"] == 20
    assert set(scores) == {
        "hidden_reference",
        "anchor_lp3.5kHz",
        "codec_multi_1.5kbps",
        "codec_multi_6kbps",
        "codec_single_3kbps",
    } | ({"opus_6", "opus_24", "codec2_2.4"} if HAVE_ANCHOR_TOOLS else set())
    # The stimulus order differs between trials or from the build order (randomised).
    orders = browser.eval("window.mushra.trials.map(t => t.order)")
    assert any(o != list(range(n_stimuli)) for o in orders)
