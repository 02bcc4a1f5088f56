//! Rebuild the eBPF object when bpf-linker changes.
use which::which;

fn main() {
    if let Ok(bpf_linker) = which("bpf-linker") {
        println!(
            "cargo:rerun-if-changed={}",
            bpf_linker.to_str().unwrap_or_default()
        );
    }
}
