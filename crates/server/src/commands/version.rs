//! `kuryr-server version`.

pub fn run() {
    println!("kuryr-server {}", env!("CARGO_PKG_VERSION"));
}
