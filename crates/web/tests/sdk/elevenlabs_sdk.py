"""The official ElevenLabs SDK against Resonance: text to speech in every output format,
streaming, voice settings, voices, history, subscription, models, and errors."""

import os

from elevenlabs import VoiceSettings
from elevenlabs.client import ElevenLabs
from elevenlabs.core.api_error import ApiError

from audio_check import check, expected_seconds

client = ElevenLabs(api_key=os.environ["RESONANCE_API_KEY"], base_url=os.environ["RESONANCE_BASE_URL"])
VOICE = os.environ["RESONANCE_VOICE_ID"]
TEXT = "Hello from the official ElevenLabs software development kit."
LONG = " ".join(["This long sentence is spoken in several chunks by the worker, one after another, "
                 "so that streaming clients hear the first one before the last is done."] * 6)

FORMATS = {
    "mp3_22050_32": 22_050, "mp3_44100_32": 44_100, "mp3_44100_64": 44_100,
    "mp3_44100_96": 44_100, "mp3_44100_128": 44_100, "mp3_44100_192": 44_100,
    "pcm_8000": 8_000, "pcm_16000": 16_000, "pcm_22050": 22_050, "pcm_24000": 24_000,
    "pcm_44100": 44_100, "pcm_48000": 48_000, "ulaw_8000": 8_000,
    "opus_48000_32": 48_000, "opus_48000_64": 48_000, "opus_48000_96": 48_000,
    "opus_48000_128": 48_000, "opus_48000_192": 48_000,
}

characters_before = client.user.subscription.get().character_count
spoken = 0

for output_format, rate in FORMATS.items():
    audio = b"".join(client.text_to_speech.convert(
        voice_id=VOICE, text=TEXT, model_id="eleven_multilingual_v2", output_format=output_format,
    ))
    spoken += len(TEXT)
    check(output_format, audio, rate, expected_seconds(TEXT))

pieces = list(client.text_to_speech.stream(voice_id=VOICE, text=LONG, output_format="pcm_24000"))
spoken += len(LONG)
assert len(pieces) > 1, "the audio came in one piece"
check("pcm_24000, streamed", b"".join(pieces), 24_000, expected_seconds(LONG), tolerance=0.5)

slow = b"".join(client.text_to_speech.convert(
    voice_id=VOICE, text=TEXT, output_format="pcm_24000", seed=42,
    voice_settings=VoiceSettings(stability=0.9, similarity_boost=0.5, style=0.2, use_speaker_boost=True, speed=0.8),
))
spoken += len(TEXT)
check("pcm_24000 at speed 0.8", slow, 24_000, expected_seconds(TEXT) / 0.8)

try:
    b"".join(client.text_to_speech.convert(voice_id=VOICE, text=TEXT, output_format="wav_44100"))
    raise AssertionError("an unsupported output_format was accepted")
except ApiError as e:
    assert e.status_code == 400 and "output_format" in e.body["detail"]["message"], e.body
    print("ok error", e.status_code, e.body["detail"]["status"])

found = client.voices.search(search="narr", page_size=10)
assert [v.voice_id for v in found.voices] == [VOICE], found
assert found.total_count == 1 and not found.has_more
print("ok voices.search", found.voices[0].name)

with open(os.environ["RESONANCE_RECORDING"], "rb") as recording:
    try:
        client.voices.ivc.create(name="Unconfirmed", files=[recording])
        raise AssertionError("a voice was cloned without the speaker's consent")
    except ApiError as e:
        assert e.status_code == 422 and e.body["detail"]["status"] == "consent_required", e.body
    print("ok voices add refused without consent")
    recording.seek(0)
    # ElevenLabs has no consent field: Resonance's is sent as an additional body parameter.
    added = client.voices.ivc.create(
        name="SDK voice", files=[recording], description="Cloned through the SDK",
        labels={"language": "en-GB"},
        request_options={"additional_body_parameters": {"consent": "true"}},
    )
voice = client.voices.get(voice_id=added.voice_id)
assert voice.name == "SDK voice" and voice.category == "cloned", voice
assert voice.labels["language"] == "en-GB", voice.labels
everything = client.voices.search(page_size=100)
assert {v.voice_id for v in everything.voices} == {VOICE, added.voice_id}
assert {v.voice_id for v in client.voices.get_all().voices} == {VOICE, added.voice_id}
assert client.user.subscription.get().voice_slots_used == 2
client.voices.delete(voice_id=added.voice_id)
try:
    client.voices.get(voice_id=added.voice_id)
    raise AssertionError("a deleted voice was found")
except ApiError as e:
    assert e.status_code == 404 and e.body["detail"]["status"] == "voice_not_found", e.body
print("ok voices add, get, delete")

history = client.history.list(page_size=3)
assert len(history.history) == 3 and history.has_more
newest = history.history[0]
assert newest.text == TEXT and newest.voice_id == VOICE, newest
older = client.history.list(page_size=3, start_after_history_item_id=history.last_history_item_id)
assert older.history[0].history_item_id not in {h.history_item_id for h in history.history}
item = client.history.get(history_item_id=newest.history_item_id)
assert item.history_item_id == newest.history_item_id and item.state == "created"
check("mp3 of a history item", b"".join(client.history.get_audio(history_item_id=item.history_item_id)),
      44_100, expected_seconds(TEXT))
client.history.delete(history_item_id=item.history_item_id)
try:
    client.history.get(history_item_id=item.history_item_id)
    raise AssertionError("a deleted history item was found")
except ApiError as e:
    assert e.status_code == 404, e.body
print("ok history list, get, audio, delete")

subscription = client.user.subscription.get()
assert subscription.character_count - characters_before == spoken, (subscription.character_count, characters_before, spoken)
assert subscription.status == "active"
print("ok subscription", subscription.character_count)

models = client.models.list()
assert "eleven_multilingual_v2" in [m.model_id for m in models]
print("ok models")
