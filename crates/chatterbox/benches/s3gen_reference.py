#!/usr/bin/env python3
"""S3Gen of the Python reference (chatterbox-tts 0.1.7) on the CPU at full size with random
weights, timed like benches/s3gen.rs: a 10 s voice prompt (embed_ref), then N speech tokens
(N-3 random + 3 silence tokens) -> 24 kHz wav with meanflow (2 steps), after one warm-up call. The
model comes from ../reference/make_fixtures.py.

Prints wall and process-CPU seconds of the two halves of S3Gen.inference, flow_inference (flow
encoder + CFM) and hift_inference, and their sum, then one `RESULT {json}` line.

  python s3gen_reference.py [--threads 2] [--tokens 250] [--tools DIR of another make_fixtures.py]
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"),
                    help="directory of make_fixtures.py (default: the repository's crates/chatterbox/reference)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    sys.path.insert(0, a.tools)
    import torch
    import make_fixtures as mf

    torch.set_num_threads(a.threads)
    s3 = mf.build_models(mf.make_config("full"), a.seed, which=("s3gen",))["s3gen"]
    ref = torch.from_numpy(mf.synth_voice(24000, 10.0, a.seed + 1, f0=150.0, peak=0.3)).float()
    with torch.inference_mode():
        ref_dict = s3.embed_ref(ref, 24000)
    g = torch.Generator().manual_seed(a.seed)
    tokens = torch.cat([torch.randint(0, 6561, (a.tokens - 3,), generator=g),
                        torch.full((3,), mf.S3GEN_SIL)]).unsqueeze(0)

    def timed(fn):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - wall, time.process_time() - cpu

    s3.inference(speech_tokens=tokens[:, :25], ref_dict=dict(ref_dict), n_cfm_timesteps=2)  # warm-up
    mel, flow_s, flow_cpu = timed(lambda: s3.flow_inference(tokens, ref_dict=dict(ref_dict),
                                                            n_cfm_timesteps=2, finalize=True))
    (wav, _), hift_s, hift_cpu = timed(lambda: s3.hift_inference(mel, None))
    total_s, total_cpu = flow_s + hift_s, flow_cpu + hift_cpu
    audio_s = wav.shape[-1] / 24000.0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: {a.tokens} tokens after a "
          f"{ref_dict['prompt_token'].shape[1]}-token prompt -> {audio_s:.2f} s of audio")
    for name, s, cpu in [("flow (encoder + CFM)", flow_s, flow_cpu), ("HiFT", hift_s, hift_cpu),
                         ("total", total_s, total_cpu)]:
        print(f"  {name:<21} {s:7.2f} s  RTF {s / audio_s:.3f}  (CPU {cpu:.2f} s)")
    print("RESULT " + json.dumps(dict(audio_s=audio_s, flow_s=flow_s, hift_s=hift_s, total_s=total_s,
                                      total_cpu_s=total_cpu)))


if __name__ == "__main__":
    main()
