// Shared build script of every crate that links libtorch (agent, train, eval, serve), pulled in with
// `include!`. torch-sys (links = "tch") exports its library directory as DEP_TCH_LIBTORCH_LIB.
//
// 1. Embed that directory as an rpath so binaries and tests run without LD_LIBRARY_PATH.
//    The path is canonicalised so it points into the cached virtualenv, not through the
//    clone's `.libtorch` link.
// 2. Keep libtorch_cuda.so linked: the linker's default --as-needed drops it because no
//    symbol of ours references it directly, and a GPU machine then silently trains on the CPU.
//    `--no-as-needed -ltorch` (the remedy in tch-rs's own build script) keeps libtorch, which
//    pulls in libtorch_cuda where it exists.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    if let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        let lib = std::path::PathBuf::from(lib);
        let lib = std::fs::canonicalize(&lib).unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        if lib.join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
        }
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
}
