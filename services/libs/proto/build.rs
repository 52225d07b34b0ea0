//! Compiles `proto/zhida/**/*.proto` with protox (pure Rust, no system `protoc`)
//! and keeps the encoded descriptor set for gRPC server reflection.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    // Read at run time, not baked in with env!: the compiled build script is shared by every
    // checkout that builds into the same target directory (its hash does not include the
    // checkout's path), so a baked path would point into whichever checkout compiled it.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../../proto");
    let files = [
        "zhida/events/v1/events.proto",
        "zhida/policy/v1/policy.proto",
        "zhida/profile/v1/profile.proto",
        "zhida/relay/v1/relay.proto",
        "zhida/notification/v1/notification.proto",
    ];
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("zhida_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    // Each file: a directory only counts as changed when entries are added or removed.
    println!("cargo:rerun-if-changed={}", root.display());
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    Ok(())
}
