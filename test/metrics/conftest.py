"""Real speech for the model-based metrics: bundled utterances, the one transcript the
bundled corpus can be given, the shared data's transcribed LibriSpeech utterance, and
anchor decodings, each made once per session."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from codectk.io.audio import read_audio, to_mono
from test.conftest import CORPUS, REPO
from test.report.conftest import HAVE_ANCHOR_TOOLS

SHARED = REPO.parent / "shared" / "data"  # the shared test data beside the clone (CI has it)
needs_anchor_tools = pytest.mark.skipif(
    not HAVE_ANCHOR_TOOLS,
    reason="opus-tools or codec2 not installed (tools/install_system_deps.sh)",
)
needs_shared = pytest.mark.skipif(
    not (SHARED / "speech_samples/text").is_file(), reason=f"{SHARED} (shared test data) absent"
)

# LibriSpeech train-clean-100, 103/1240/103-1240.trans.txt, first line (CC BY 4.0, V.
# Panayotov et al. 2015); the bundled copy of the corpus has no transcripts, this line is
# quoted verbatim by public LibriSpeech loaders (two independent copies agree).
TRANSCRIPTS = {
    "103-1240-0000": "CHAPTER ONE MISSUS RACHEL LYNDE IS SURPRISED MISSUS RACHEL LYNDE LIVED "
    "JUST WHERE THE AVONLEA MAIN ROAD DIPPED DOWN INTO A LITTLE HOLLOW FRINGED WITH ALDERS "
    "AND LADIES EARDROPS AND TRAVERSED BY A BROOK"
}


def bundled(utt: str) -> tuple[np.ndarray, int]:
    """A bundled utterance as float32 (T,) and its rate (16 kHz)."""
    spk, chapter, _ = utt.split("-")
    wav, fs = read_audio(
        str(CORPUS / "LibriSpeech/train-clean-100" / spk / chapter / f"{utt}.flac")
    )
    return to_mono(wav), fs


def shared_librispeech() -> tuple[np.ndarray, int, str]:
    """LibriSpeech dev-clean 2412-153948-0000 from the shared data, with its transcript."""
    d = SHARED / "speech_samples"
    wav, fs = read_audio(str(d / "librispeech/2412-153948-0000.flac"))
    lines = dict(line.split(" ", 1) for line in (d / "text").read_text().splitlines())
    return to_mono(wav), fs, lines["librispeech/2412-153948-0000"]


@pytest.fixture(scope="session")
def anchor_decode():
    """``anchor_decode(name, kbps, wav, fs)``: the anchor's decoding, made once per input."""
    from codectk.anchors import get_anchor

    done: dict = {}

    def decode(name: str, kbps: float, wav: np.ndarray, fs: int) -> np.ndarray:
        key = (name, kbps, wav.size, float(wav[: fs // 10].sum()))
        if key not in done:
            with tempfile.TemporaryDirectory() as work:
                done[key] = get_anchor(name).encode_decode(wav, fs, kbps, Path(work))[0]
        return done[key]

    return decode


@pytest.fixture(scope="session")
def recognised():
    """An in-memory hypothesis cache shared by the session's tests (one decoding per input)."""
    from codectk.metrics.asr import HypothesisCache

    return HypothesisCache()
