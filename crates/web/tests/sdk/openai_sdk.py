"""The official OpenAI SDK against Resonance: speech in every format, speed, streaming as
audio and as server-sent events, models, and errors."""

import base64
import json
import os

import openai
from openai import OpenAI

from audio_check import check, expected_seconds

BASE = os.environ["RESONANCE_BASE_URL"]
client = OpenAI(base_url=f"{BASE}/v1", api_key=os.environ["RESONANCE_API_KEY"])
VOICE = os.environ["RESONANCE_VOICE_NAME"]
TEXT = "Hello from the official OpenAI software development kit."
LONG = " ".join(["This long sentence is spoken in several chunks by the worker, one after another, "
                 "so that streaming clients hear the first one before the last is done."] * 6)

for response_format in ["mp3", "opus", "aac", "flac", "wav", "pcm"]:
    audio = client.audio.speech.create(
        model="tts-1", voice=VOICE, input=TEXT, response_format=response_format
    ).read()
    rate = 48_000 if response_format == "opus" else 24_000
    # ADTS cannot signal the AAC encoder's delay: decoders play up to three 1024-sample
    # frames of extra silence.
    tolerance = 0.15 if response_format == "aac" else 0.12
    check(response_format, audio, rate, expected_seconds(TEXT), tolerance)

fast = client.audio.speech.create(
    model="gpt-4o-mini-tts", voice=VOICE, input=TEXT, response_format="wav", speed=2.0,
    instructions="Speak quickly and cheerfully.",
).read()
check("wav at speed 2", fast, 24_000, expected_seconds(TEXT) / 2)

# Streamed as it is synthesized; chunks overlap by 50 ms crossfades.
with client.audio.speech.with_streaming_response.create(
    model="tts-1", voice=VOICE, input=LONG, response_format="pcm"
) as response:
    pieces = list(response.iter_bytes(4096))
streamed = b"".join(pieces)
assert len(pieces) > 1, "the audio came in one piece"
check("pcm, streamed", streamed, 24_000, expected_seconds(LONG), tolerance=0.5)

with client.audio.speech.with_streaming_response.create(
    model="tts-1", voice=VOICE, input=TEXT, response_format="pcm", stream_format="sse"
) as response:
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in response.iter_lines() if line.startswith("data: ")]
assert events[-1]["type"] == "speech.audio.done", events[-1]
assert events[-1]["usage"]["input_tokens"] == len(TEXT)
audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1] if e["type"] == "speech.audio.delta")
check("pcm over server-sent events", audio, 24_000, expected_seconds(TEXT))

ids = [model.id for model in client.models.list()]
assert "tts-1" in ids and "chatterbox-turbo" in ids, ids
print("ok models", ids)

try:
    client.audio.speech.create(model="tts-1", voice=VOICE, input=TEXT, response_format="ogg")
    raise AssertionError("an unsupported response_format was accepted")
except openai.BadRequestError as e:
    assert e.param == "response_format", e.body
    print("ok error", e.status_code, e.param)

try:
    client.audio.speech.create(model="tts-1", voice="no such voice", input=TEXT)
    raise AssertionError("an unknown voice was accepted")
except openai.BadRequestError as e:
    assert e.param == "voice", e.body

try:
    OpenAI(base_url=f"{BASE}/v1", api_key="rsn_wrong_key").models.list()
    raise AssertionError("a wrong key was accepted")
except openai.AuthenticationError as e:
    assert e.code == "invalid_api_key", e.body
    print("ok wrong key", e.status_code)
