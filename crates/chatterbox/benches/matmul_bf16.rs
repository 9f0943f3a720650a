//! S3Gen's matrix shapes in f32 (gemm, the baseline) and in bf16 (`matmul_bf16`), same
//! run, with the ratio: `cargo bench -p chatterbox --bench matmul_bf16 -- --threads 2`.

use std::time::Instant;

use chatterbox::matmul_bf16::{self, Bf16Rhs};
use chatterbox::s3gen::accumulate;
use rand::{Rng, SeedableRng};

/// `(m, k, n, what)`: the CFM decoder's layers over 1000 frames and HiFT's widest tap.
const SHAPES: [(usize, usize, usize, &str); 7] = [
    (1000, 256, 512, "decoder q/k/v"),
    (1000, 512, 256, "decoder attention out"),
    (1000, 256, 1024, "decoder feed-forward in"),
    (1000, 1024, 256, "decoder feed-forward out"),
    (1000, 64, 1000, "decoder scores, one head"),
    (1000, 1000, 64, "decoder weighted values, one head"),
    (12000, 256, 256, "HiFT ResBlock tap"),
];

fn best_of(runs: usize, mut work: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .map_or(2, |t| t.parse().expect("--threads takes a number"));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("rayon pool");
    if !matmul_bf16::available() {
        println!("this CPU has no AVX-512 BF16: nothing to compare");
        return;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    println!("{threads} threads, best of 10 runs each");
    for (m, k, n, what) in SHAPES {
        let lhs: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
        let rhs: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let packed = Bf16Rhs::from_row_major(&rhs, k, n);
        let mut out = vec![0.0; m * n];
        let f32_s = best_of(10, || {
            accumulate::matmul_accumulate(&mut out, &lhs, &rhs, m, k, n)
        });
        let bf16_s = best_of(10, || {
            matmul_bf16::matmul_accumulate(&mut out, &lhs, &packed, m)
        });
        let gmac = (m * k * n) as f64 / 1e9;
        println!(
            "{what:<34} {m:>5} x {k:>4} x {n:>4}: f32 {:>6.2} ms ({:>5.1} GMAC/s), bf16 {:>6.2} ms ({:>5.1} GMAC/s), bf16 / f32 {:.2}",
            f32_s * 1e3,
            gmac / f32_s,
            bf16_s * 1e3,
            gmac / bf16_s,
            bf16_s / f32_s
        );
    }
}
