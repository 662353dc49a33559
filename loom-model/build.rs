//! Compiles smux-core's source against loom's synchronisation primitives.

fn main() {
    println!("cargo:rustc-cfg=smux_loom");
}
