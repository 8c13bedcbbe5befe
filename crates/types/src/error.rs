/// A value that failed validation; the message names the kind of value and quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub(crate) String);

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        ParseError(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl From<ParseError> for String {
    fn from(e: ParseError) -> String {
        e.0
    }
}
