//! The kubeconfig loader: read and merge a file of any bytes (no context selected, no
//! credential read, no plugin run). An error must never quote the file's values.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("kreplay-fuzz-kubeconfig-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch kubeconfig");
    if let Err(e) = engine::kubeconfig::check_kubeconfig_files(std::slice::from_ref(path)) {
        assert!(!e.to_string().is_empty());
    }
});
