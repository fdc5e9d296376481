//! The verdict's words: what is wrong and where, with the validator's own words kept apart
//! because they may quote values (a Secret's) into places more people read.

use std::fmt;

/// Why a config is not valid, pointing at the place when it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// What is wrong, in words that quote no value from the file.
    pub reason: String,
    /// The validator's own words, which may quote values (a Secret's, say).
    pub detail: Option<String>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.location(f)?;
        write!(f, ": {}", self.reason)?;
        match &self.detail {
            Some(detail) => write!(f, ": {detail}"),
            None => Ok(()),
        }
    }
}

impl Invalid {
    pub fn new(file: &str, reason: impl Into<String>) -> Self {
        Invalid {
            file: file.to_string(),
            line: None,
            column: None,
            reason: reason.into(),
            detail: None,
        }
    }

    fn location(&self, f: &mut impl fmt::Write) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }

    /// Where and what, without the detail: fit for places readable by more people than the config.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = self.location(&mut out);
        out.push_str(": ");
        out.push_str(&self.reason);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_leaves_the_detail_out() {
        let invalid = Invalid {
            line: Some(2),
            column: Some(9),
            detail: Some("\"hunter2\" is not of type \"integer\"".into()),
            ..Invalid::new("secret/app/app.yaml", "schema: at /port")
        };
        assert_eq!(
            invalid.to_string(),
            "secret/app/app.yaml:2:9: schema: at /port: \"hunter2\" is not of type \"integer\""
        );
        assert_eq!(
            invalid.summary(),
            "secret/app/app.yaml:2:9: schema: at /port"
        );
        assert_eq!(Invalid::new("a", "b").to_string(), "a: b");
    }
}
