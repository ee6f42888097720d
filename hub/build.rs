//! The migrations are embedded in the binary when `store/mod.rs` is
//! compiled (`sqlx::migrate!`); cargo does not know that, so without this a
//! migration added, changed or removed leaves a binary with the old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
