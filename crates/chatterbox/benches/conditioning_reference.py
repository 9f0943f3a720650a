#!/usr/bin/env python3
"""The reference side of benches/conditioning.rs: ChatterboxTurboTTS.prepare_conditionals of
chatterbox-tts 0.1.7 on synthetic voice clips, with full-size RANDOM weights on the CPU (the models
and the clips come from ../reference/make_fixtures.py). One warm-up run per clip, then timed runs.

  python conditioning_reference.py [--threads 2] [--seconds 10,60] [--runs 3]
"""
import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))

import soundfile as sf
import torch

import make_fixtures as mf
from chatterbox.tts_turbo import ChatterboxTurboTTS


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", default="10,60", help="clip lengths, comma-separated")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    models = mf.build_models(mf.make_config("full"), 0, which=("ve", "s3gen", "t3"))
    tts = ChatterboxTurboTTS.__new__(ChatterboxTurboTTS)  # no Perth watermarker / tokenizer needed
    tts.sr, tts.t3, tts.s3gen, tts.ve, tts.device, tts.conds = (
        24000, models["t3"], models["s3gen"], models["ve"], "cpu", None)
    with tempfile.TemporaryDirectory() as td:
        for secs in (float(s) for s in a.seconds.split(",")):
            path = os.path.join(td, f"ref{secs:.0f}.wav")
            sf.write(path, mf.synth_voice(24000, secs, 1, f0=150.0, peak=0.3), 24000, subtype="FLOAT")
            tts.prepare_conditionals(path)  # warm-up
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                tts.prepare_conditionals(path)
                times.append(time.perf_counter() - t0)
            c = tts.conds
            print(f"reference prepare_conditionals {secs:.0f} s clip, {a.threads} threads: "
                  f"best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s "
                  f"(T3 prompt {c.t3.cond_prompt_speech_tokens.shape[1]}, "
                  f"S3Gen prompt {c.gen['prompt_token'].shape[1]} tokens)", flush=True)


if __name__ == "__main__":
    main()
