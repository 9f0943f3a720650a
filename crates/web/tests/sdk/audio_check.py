"""Decoding what the SDKs return: raw PCM and mu-law by arithmetic, containers with ffmpeg."""

import json
import subprocess

# The test engine speaks 10 ms of tone per character of text.
SECONDS_PER_CHAR = 0.01


def expected_seconds(text: str) -> float:
    return len(text) * SECONDS_PER_CHAR


def probe(data: bytes) -> tuple[int, float]:
    """Sample rate and duration of an encoded file, decoded in full by ffmpeg."""
    info = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=sample_rate", "-of", "json", "-"],
        input=data, capture_output=True, check=True,
    )
    rate = int(json.loads(info.stdout)["streams"][0]["sample_rate"])
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "-", "-f", "s16le", "-ac", "1", "-ar", str(rate), "-"],
        input=data, capture_output=True, check=True,
    ).stdout
    return rate, len(pcm) / 2 / rate


def check(label: str, data: bytes, rate: int, seconds: float, tolerance: float = 0.12) -> None:
    """Asserts `data` lasts `seconds` at `rate`; a `label` starting with pcm or ulaw is raw."""
    if label.startswith("pcm"):
        actual_rate, duration = rate, len(data) / 2 / rate
    elif label.startswith("ulaw"):
        actual_rate, duration = rate, len(data) / rate
    else:
        actual_rate, duration = probe(data)
    assert actual_rate == rate, f"{label}: {actual_rate} Hz, expected {rate} Hz"
    assert abs(duration - seconds) <= tolerance, f"{label}: {duration:.3f} s, expected {seconds:.3f} s"
    print(f"ok {label}: {actual_rate} Hz, {duration:.3f} s")
