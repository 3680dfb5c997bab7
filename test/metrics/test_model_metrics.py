"""The model-based metrics on real speech, each against something it must get right:
ViSQOL's ceiling and its ranking of Opus bitrates, DNSMOS of clean vs noisy speech,
PocketSphinx's WER on LibriSpeech against its published accuracy and under Codec 2, and
speaker similarity within vs across speakers. The models load once per session."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codectk.metrics import asr
from codectk.metrics.dnsmos import COLUMNS as DNSMOS_COLUMNS
from codectk.metrics.dnsmos import dnsmos
from codectk.metrics.speaker import speaker_similarity
from codectk.metrics.visqol import visqol_speech
from test.metrics.conftest import (
    TRANSCRIPTS,
    bundled,
    needs_anchor_tools,
    needs_shared,
    shared_librispeech,
)

# PocketSphinx with its generic en-us model: 31.82% WER on LibriSpeech test-clean
# (Picovoice speech-to-text-benchmark, README at commit 97f560e, 2019-09-02).
PUBLISHED_WER = 0.3182


def _noisy(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(x.size).astype(np.float32)
    noise *= np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    y = x + noise
    return y / max(1.0, float(np.abs(y).max()))


def _within_published(errors: int, words: int) -> tuple[float, float]:
    """The published WER +- 3 binomial standard errors for ``words`` words."""
    half = 3 * math.sqrt(PUBLISHED_WER * (1 - PUBLISHED_WER) / words)
    return PUBLISHED_WER - half, PUBLISHED_WER + half


def test_visqol_ceiling_and_floor_cases():
    x, fs = bundled("1034-121119-0000")
    x = x[: 4 * fs]
    assert visqol_speech(x, x, fs) == pytest.approx(5.0)  # identical: the mapping's ceiling
    assert 1.0 <= visqol_speech(x, _noisy(x, 0.0), fs) < 3.0
    assert math.isnan(visqol_speech(x[: fs // 2], x[: fs // 2], fs))  # under 1 s
    assert math.isnan(visqol_speech(x, np.zeros_like(x), fs))
    with pytest.raises(ValueError, match="non-empty finite 1-D"):
        visqol_speech(x[None], x, fs)


@needs_anchor_tools
def test_visqol_ranks_opus_6_below_opus_24(anchor_decode):
    for utt in ("1034-121119-0000", "1183-124566-0000"):
        x, fs = bundled(utt)
        low = visqol_speech(x, anchor_decode("opus", 6, x, fs), fs)
        high = visqol_speech(x, anchor_decode("opus", 24, x, fs), fs)
        assert 1.0 < low < high < 5.0, (utt, low, high)


def test_dnsmos_prefers_clean_speech_to_noise_at_0_db():
    for utt in ("1081-125237-0000", "1088-129236-0000"):
        x, fs = bundled(utt)
        x = x[: int(9.5 * fs)]  # one 9.01 s DNSMOS window
        clean, noisy = dnsmos(x, fs), dnsmos(_noisy(x, 0.0), fs)
        assert set(clean) == set(DNSMOS_COLUMNS)
        for c in DNSMOS_COLUMNS:
            assert 1.0 <= noisy[c] < clean[c] <= 5.0, (utt, c, clean[c], noisy[c])
        assert clean["dnsmos_bak"] - noisy["dnsmos_bak"] > 1.5  # the noise is what BAK rates
    assert all(math.isnan(v) for v in dnsmos(np.zeros(2 * fs, np.float32), fs).values())
    assert all(math.isnan(v) for v in dnsmos(x[: fs // 2], fs).values())  # under 1 s


def test_error_counts_and_normalisation():
    assert asr.normalize("DON'T stop-Go,  now!") == "dont stop go now"
    e = asr.errors("THE CAT SAT", "the cat sat down")
    assert (e.word_errors, e.words, e.wer) == (1, 3, pytest.approx(1 / 3))
    e = asr.errors("THE CAT", "a cat")
    assert (e.word_errors, e.words, e.char_errors, e.chars) == (1, 2, 3, 7)
    e = asr.errors("THE CAT", "")
    assert (e.wer, e.cer) == (1.0, 1.0)
    assert asr.errors(" ,. ", "anything") is None


def test_wer_of_bundled_reference_and_codec2(anchor_decode, recognised):
    """The bundled 103-1240-0000 (the one transcript it has): the recogniser's WER on the
    clean reference within 3 standard errors of its published 31.82%, and higher on
    Codec 2 at 1.2 kbps (where the tools exist)."""
    x, fs = bundled("103-1240-0000")
    e = asr.errors(TRANSCRIPTS["103-1240-0000"], recognised.transcribe(x, fs))
    lo, hi = _within_published(e.word_errors, e.words)
    assert e.words == 34 and lo <= e.wer <= hi, e
    from test.metrics.conftest import HAVE_ANCHOR_TOOLS

    if HAVE_ANCHOR_TOOLS:
        y = anchor_decode("codec2", 1.2, x, fs)
        hyp = recognised.transcribe(y, fs)
        assert asr.errors(TRANSCRIPTS["103-1240-0000"], hyp).wer > e.wer + 0.2


@needs_shared
def test_wer_of_two_librispeech_references_pooled(recognised):
    x, fs = bundled("103-1240-0000")
    y, fs_y, text = shared_librispeech()
    e1 = asr.errors(TRANSCRIPTS["103-1240-0000"], recognised.transcribe(x, fs))
    e2 = asr.errors(text, recognised.transcribe(y, fs_y))
    errors, words = e1.word_errors + e2.word_errors, e1.words + e2.words
    lo, hi = _within_published(errors, words)
    assert lo <= errors / words <= hi, (errors, words)


def test_hypothesis_does_not_depend_on_what_was_decoded_before():
    """Five 4 s bundled clips in a row: the fifth decodes as in a fresh recogniser (without
    the front end's reset its cepstral mean carried over and changed that hypothesis)."""
    from test.conftest import bundled_flacs

    clips = []
    for f in bundled_flacs()[:5]:
        x, fs = bundled(f.stem)
        clips.append(x[: 4 * fs])
    in_a_row = [asr.transcribe(c, fs) for c in clips][-1]
    asr._decoder.cache_clear()
    assert asr.transcribe(clips[-1], fs) == in_a_row


def test_hypothesis_cache_round_trip(tmp_path, monkeypatch):
    x, fs = bundled("1363-135842-0000")
    x = x[: 2 * fs]
    cache = asr.HypothesisCache(tmp_path)
    hyp = cache.transcribe(x, fs)
    assert hyp and len(cache.new) == 1
    cache.save()
    again = asr.HypothesisCache(tmp_path)
    monkeypatch.setattr(asr, "transcribe_pcm", lambda pcm: pytest.fail("not cached"))
    assert again.transcribe(x, fs) == hyp and not again.new


def test_speaker_similarity_within_above_across_speakers():
    """Halves of one utterance (one speaker) are closer than halves of two speakers, of
    the same sex (1040 and 1081, male) or not (103, female)."""
    a, fs = bundled("1040-133433-0000")
    b, _ = bundled("1081-125237-0000")
    c, _ = bundled("103-1240-0000")
    h = a.size // 2
    same = speaker_similarity(a[:h], a[h:], fs)
    assert same > speaker_similarity(a[:h], b[: b.size // 2], fs) + 0.1
    assert same > speaker_similarity(a[:h], c[: c.size // 2], fs) + 0.1
    assert speaker_similarity(a, a, fs) == pytest.approx(1.0, abs=1e-5)
    assert math.isnan(speaker_similarity(a, np.zeros_like(a), fs))


@needs_shared
def test_speaker_similarity_two_utterances_of_one_speaker():
    from codectk.io.audio import read_audio, to_mono
    from test.metrics.conftest import SHARED

    d = SHARED / "speech_samples/librispeech"
    u0, fs = read_audio(str(d / "2412-153948-0000.flac"))
    u1, _ = read_audio(str(d / "2412-153948-0001.flac"))
    other, _ = bundled("103-1240-0000")  # female, as 2412
    same = speaker_similarity(to_mono(u0), to_mono(u1), fs)
    assert same > speaker_similarity(to_mono(u0), other, fs) + 0.1
