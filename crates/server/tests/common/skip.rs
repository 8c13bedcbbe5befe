/// A real-stack test that cannot reach its stack: in CI (`CI=true`), where the stack is always
/// up, that is a failure; elsewhere an explicit skip, and the test passes.
pub fn skip_or_fail(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cannot run in CI: {reason}");
    }
    println!("skipped: {reason}");
}
