"""Checking what the SDKs return: raw PCM and mu-law by arithmetic here; encoded files are
saved for the Rust test (tests/sdk.rs) to decode with Resonance's own decoder."""

import json
import os

# The test engine speaks 10 ms of tone per character of text.
SECONDS_PER_CHAR = 0.01

DECODE_DIR = os.environ["RESONANCE_DECODE_DIR"]


def expected_seconds(text: str) -> float:
    return len(text) * SECONDS_PER_CHAR


def check(label: str, data: bytes, rate: int, seconds: float, tolerance: float = 0.12) -> None:
    """Asserts `data` lasts `seconds` at `rate`; a `label` starting with pcm or ulaw is raw,
    anything else is saved with its expectations in `expected.jsonl` for decoding."""
    if label.startswith("pcm"):
        duration = len(data) / 2 / rate
    elif label.startswith("ulaw"):
        duration = len(data) / rate
    else:
        with open(os.path.join(DECODE_DIR, "expected.jsonl"), "a+") as expected:
            expected.seek(0)
            name = f"{sum(1 for _ in expected):03}.audio"
            with open(os.path.join(DECODE_DIR, name), "wb") as audio:
                audio.write(data)
            expected.write(json.dumps({"file": name, "label": label, "rate": rate,
                                       "seconds": seconds, "tolerance": tolerance}) + "\n")
        print(f"saved {label} for decoding")
        return
    assert abs(duration - seconds) <= tolerance, f"{label}: {duration:.3f} s, expected {seconds:.3f} s"
    print(f"ok {label}: {rate} Hz, {duration:.3f} s")
