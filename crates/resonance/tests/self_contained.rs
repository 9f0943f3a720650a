//! The binary runs on any Linux machine with a C runtime: every codec and library is linked
//! in statically, so a copied binary (a GPU worker, a container image) needs no packages.

use std::process::Command;

/// The C and C++ runtimes and the kernel's vDSO: present on every glibc system.
const RUNTIME_LIBRARIES: &[&str] = &[
    "linux-vdso.so",
    "linux-gate.so",
    "ld-linux",
    "libc.so",
    "libm.so",
    "libgcc_s.so",
    "libstdc++.so",
    "libdl.so",
    "libpthread.so",
    "librt.so",
];

/// The file name of each library in `ldd`'s output (`name => path (address)`, or
/// `/path/name (address)` for the loader and the vDSO).
fn linked_libraries(ldd_output: &str) -> Vec<String> {
    ldd_output
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(|first| first.rsplit('/').next().unwrap_or(first).to_owned())
        .collect()
}

#[test]
fn the_binary_links_only_the_c_runtime() {
    let binary = env!("CARGO_BIN_EXE_resonance");
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .expect("ldd (Debian's libc-bin) runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "ldd {binary} failed: {stdout}");
    let libraries = linked_libraries(&stdout);
    assert!(
        libraries.iter().any(|name| name.starts_with("libc.so")),
        "ldd listed no C library, so its output was not understood:\n{stdout}"
    );
    let extra: Vec<&String> = libraries
        .iter()
        .filter(|name| {
            !RUNTIME_LIBRARIES
                .iter()
                .any(|runtime| name.starts_with(runtime))
        })
        .collect();
    assert!(
        extra.is_empty(),
        "the binary needs {extra:?} beyond the C runtime; link them statically:\n{stdout}"
    );
}

#[test]
fn ldd_output_is_read_by_file_name() {
    let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                  \tlibopus.so.0 => /lib/x86_64-linux-gnu/libopus.so.0 (0x00007f2a)\n\
                  \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f29)\n\
                  \t/lib64/ld-linux-x86-64.so.2 (0x00007f2b)\n";
    assert_eq!(
        linked_libraries(output),
        [
            "linux-vdso.so.1",
            "libopus.so.0",
            "libc.so.6",
            "ld-linux-x86-64.so.2"
        ]
    );
}
