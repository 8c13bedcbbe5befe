/// A real-stack test that cannot reach its stack: in CI (`CI=true`), where the stack is always
/// up, that is a failure; elsewhere an explicit skip, and the test passes.
pub fn skip_or_fail(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cannot run in CI: {reason}");
    }
    println!("skipped: {reason}");
}

/// The stack coordinate `name` from the environment, or `None` after [`skip_or_fail`].
#[allow(dead_code)] // not every test binary that includes this file reads a coordinate
pub fn stack_var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            skip_or_fail(&format!("{name} is not set"));
            None
        }
    }
}
