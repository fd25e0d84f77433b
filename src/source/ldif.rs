//! Streaming RFC 2849 LDIF reader over `BufRead` (content records only).

use super::{Origin, Record, Value};
use std::io::BufRead;
use std::path::PathBuf;

/// Where `:<` URL values may be read from. `None` refuses every URL value.
#[derive(Clone, Debug, Default)]
pub struct UrlPolicy {
    pub allowed_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LdifError {
    #[error("{path}:{line}: {message}")]
    Syntax { path: String, line: u64, message: String },
    #[error("{path}: read failed: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub struct LdifReader<R> {
    reader: R,
    path: String,
    policy: UrlPolicy,
}

impl<R: BufRead> LdifReader<R> {
    pub fn new(reader: R, path: impl Into<String>, policy: UrlPolicy) -> Self {
        Self { reader, path: path.into(), policy }
    }

    /// The next entry, `Ok(None)` at the end of the input.
    pub fn next_record(&mut self) -> Result<Option<Record>, LdifError> {
        let _ = (
            &mut self.reader,
            &self.policy,
            Origin { path: self.path.clone(), line: 0 },
            Value::Text(String::new()),
        );
        todo!("streaming LDIF parser")
    }
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<Record, LdifError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}
