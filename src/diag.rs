//! Errors that point into a file: `file:line: field: message`.
//!
//! Operators edit templates and settings by hand; every mistake must name the file, the line
//! and the field, and say what was expected. This module owns that error shape and the
//! mapping from TOML byte spans to line numbers and field paths.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One mistake in one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub file: PathBuf,
    /// 1-based; 0 when the mistake is about the file as a whole.
    pub line: usize,
    /// Dotted field path (`bootstrap[1].uri`), empty when no single field is at fault.
    pub field: String,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SourceError {}

/// Several mistakes, reported together so an operator fixes them in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceErrors(pub Vec<SourceError>);

impl fmt::Display for SourceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceErrors {}

/// A file's text with what is needed to place spans in it.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        Source { path, text }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub fn error(
        &self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> SourceError {
        SourceError {
            file: self.path.to_path_buf(),
            line: span.map_or(0, |s| self.line_of(s.start)),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Turns a TOML syntax or type error into a located error, recovering the field name from
    /// the text around the span (the TOML crate reports the span but not the key path).
    pub fn from_toml(&self, error: &toml::de::Error) -> SourceError {
        let span = error.span();
        let field = span
            .as_ref()
            .map(|s| self.field_at(s.start))
            .unwrap_or_default();
        let message = error.message().trim().replace('\n', " ");
        self.error(span, field, message)
    }

    /// The dotted key path of the `key = value` line holding `offset`, prefixed by the table
    /// header above it (`[[bootstrap]]` → `bootstrap.uri`).
    fn field_at(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let line = self.text[line_start..line_end].trim();
        let key = if line.starts_with('[') {
            String::new()
        } else {
            line.split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_string()
        };
        let table = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
            .unwrap_or_default();
        match (table.is_empty(), key.is_empty()) {
            (true, _) => key,
            (false, true) => table,
            (false, false) => format!("{table}.{key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_path_comes_from_table_and_key() {
        let text = "mcc = \"313\"\n[[bootstrap]]\nuri = 5\n";
        let source = Source::new(Path::new("x.toml"), text);
        let offset = text.find("5").unwrap();
        assert_eq!(source.line_of(offset), 3);
        assert_eq!(source.field_at(offset), "bootstrap.uri");
        assert_eq!(source.field_at(2), "mcc");
    }

    #[test]
    fn display_names_file_line_and_field() {
        let e = SourceError {
            file: "zones/a.toml".into(),
            line: 4,
            field: "mnc[0]".into(),
            message: "expected 2 or 3 digits".into(),
        };
        assert_eq!(
            e.to_string(),
            "zones/a.toml:4: field `mnc[0]`: expected 2 or 3 digits"
        );
    }
}
