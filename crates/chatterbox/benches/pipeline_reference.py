#!/usr/bin/env python3
"""CPU timing of the reference Chatterbox Turbo (chatterbox-tts 0.1.7) with full-size RANDOM weights,
the reference side of benches/pipeline.rs (`cargo bench -p chatterbox --features parity --bench pipeline --
--reference PYTHON` runs it and divides).

  (a) T3 Turbo generating exactly N speech tokens with the KV cache (stop token masked), split into
      (a1) the prefill up to the first sampled token and (a2) the N-1 KV-cached decode steps
  (b) S3Gen meanflow inference (2 CFM steps) for N tokens -> wav
  (c) voice-cloning conditioning (ChatterboxTurboTTS.prepare_conditionals) on a 10 s reference

Each stage gets one short warm-up call first.  Real-time factor (RTF) = compute seconds per second
of audio (N tokens = N/25 s).  The models come from ../reference/make_fixtures.py.
Usage: python pipeline_reference.py [--threads 2] [--tokens 250]
"""
import argparse
import os
import resource
import sys
import tempfile
import time

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))

import soundfile as sf
import torch

import make_fixtures as mf
from chatterbox.tts_turbo import ChatterboxTurboTTS


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=250, help="speech tokens to generate / vocode (25 per s)")
    ap.add_argument("--ref-seconds", type=float, default=10.0)
    ap.add_argument("--text-tokens", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, tokens {a.tokens}, "
          f"ref {a.ref_seconds:.1f} s")

    (models, t_build) = timed(lambda: mf.build_models(mf.make_config("full"), a.seed))
    t3, s3, ve = models["t3"], models["s3gen"], models["ve"]
    print(f"built full-size random models in {t_build:.1f} s (peak RSS {peak_rss_mb():.0f} MB)")
    with torch.no_grad():  # never sample the stop token -> exactly N tokens
        t3.speech_head.bias[t3.hp.stop_speech_token] = -float("inf")

    tts = ChatterboxTurboTTS.__new__(ChatterboxTurboTTS)  # no Perth watermarker / tokenizer needed
    tts.sr, tts.t3, tts.s3gen, tts.ve, tts.device, tts.conds = 24000, t3, s3, ve, "cpu", None
    audio_s = a.tokens / 25.0
    results = {}

    with tempfile.TemporaryDirectory() as td:
        path = os.path.join(td, "ref.wav")
        sf.write(path, mf.synth_voice(24000, a.ref_seconds, a.seed + 1, f0=150.0, peak=0.3), 24000,
                 subtype="FLOAT")
        # (c) conditioning: loudness norm, resample, S3Gen embed_ref (mel, CAMPPlus, S3 tokens),
        #     T3 prompt tokens, VoiceEncoder
        tts.prepare_conditionals(path)  # warm-up
        _, results["conditioning"] = timed(lambda: tts.prepare_conditionals(path))
    conds = tts.conds
    print(f"(c) conditioning on {a.ref_seconds:.0f} s reference: {results['conditioning']:.2f} s "
          f"(T3 prompt {conds.t3.cond_prompt_speech_tokens.shape[1]} tokens, S3Gen prompt "
          f"{conds.gen['prompt_token'].shape[1]} tokens / {conds.gen['prompt_feat'].shape[1]} mel frames)")

    # (a) T3 Turbo: prefill [cond | text | BOS] + (N-1) KV-cached decode steps, default sampling
    g = torch.Generator().manual_seed(a.seed)
    text = torch.randint(0, t3.hp.text_tokens_dict_size, (1, a.text_tokens), generator=g)
    t3.inference_turbo(conds.t3, text, max_gen_len=4)  # warm-up
    sampled_at = []  # when each token was sampled: the first one ends the prefill
    multinomial = torch.multinomial

    def timed_multinomial(*args, **kwargs):
        token = multinomial(*args, **kwargs)
        sampled_at.append(time.perf_counter())
        return token

    torch.multinomial = timed_multinomial
    try:
        t3_start = time.perf_counter()
        toks, results["t3"] = timed(lambda: t3.inference_turbo(conds.t3, text, max_gen_len=a.tokens - 1))
    finally:
        torch.multinomial = multinomial
    assert toks.shape[1] == a.tokens, toks.shape
    prefill = sampled_at[0] - t3_start
    decode = results["t3"] - prefill
    positions = 1 + conds.t3.cond_prompt_speech_tokens.shape[1] + a.text_tokens + 1
    print(f"(a) T3 Turbo {a.tokens} tokens: {results['t3']:.2f} s = {1000 * results['t3'] / a.tokens:.1f} ms/token, "
          f"RTF {results['t3'] / audio_s:.3f}")
    print(f"(a1) T3 prefill, {positions} positions and the first token: {prefill:.2f} s")
    print(f"(a2) T3 decode, {a.tokens - 1} tokens: {decode:.2f} s = {(a.tokens - 1) / decode:.1f} tokens/s "
          f"({1000 * decode / (a.tokens - 1):.0f} ms/token)")

    # (b) S3Gen meanflow: N valid tokens (ending in 3x S3GEN_SIL as generate() does) -> 24 kHz wav
    sp = torch.cat([torch.randint(0, 6561, (a.tokens - 3,), generator=g), torch.full((3,), mf.S3GEN_SIL)])
    s3.inference(speech_tokens=sp[:25], ref_dict=dict(conds.gen), n_cfm_timesteps=2)  # warm-up
    (wav, _), results["s3gen"] = timed(lambda: s3.inference(speech_tokens=sp, ref_dict=dict(conds.gen),
                                                            n_cfm_timesteps=2))
    wav_s = wav.shape[-1] / 24000.0
    print(f"(b) S3Gen meanflow (2 steps) {a.tokens} tokens -> {wav_s:.2f} s wav: {results['s3gen']:.2f} s, "
          f"RTF {results['s3gen'] / wav_s:.3f}")

    tot = results["t3"] + results["s3gen"]
    print(f"T3 + S3Gen total {tot:.2f} s for {audio_s:.1f} s of audio: RTF {tot / audio_s:.3f} "
          f"(+ conditioning {results['conditioning']:.2f} s once per reference voice)")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
