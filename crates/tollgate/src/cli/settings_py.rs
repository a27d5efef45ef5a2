//! Reading the JWT settings of a Django settings module without Python: the literal subset
//! settings files write (strings, numbers, `True`/`False`/`None`, lists, tuples, dicts and
//! `timedelta(...)`), in top-level assignments. Anything else (a call, an environment lookup,
//! arithmetic) is kept as its source text, for the converter to report; a name is resolved to
//! a literal assigned to it at top level earlier in the file (`"SIGNING_KEY": SECRET_KEY`).

use std::collections::HashMap;

/// A value of a settings file, as far as it could be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Py {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A list or a tuple.
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
    /// A `timedelta`, in seconds.
    Duration(f64),
    /// An expression that is not a literal, as written.
    Code(String),
}

/// A settings file that could not be read, with the line where reading stopped.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// The values assigned at top level in `source`, by name; a later assignment wins.
pub(crate) fn top_level_assignments(source: &str) -> Result<HashMap<String, Py>, SyntaxError> {
    let mut parser = Parser {
        text: source.as_bytes(),
        source,
        at: 0,
        names: HashMap::new(),
    };
    while parser.at < parser.text.len() {
        parser.statement()?;
    }
    Ok(parser.names)
}

struct Parser<'a> {
    text: &'a [u8],
    source: &'a str,
    at: usize,
    names: HashMap<String, Py>,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> SyntaxError {
        let line = self.source[..self.at.min(self.source.len())]
            .matches('\n')
            .count()
            + 1;
        SyntaxError {
            line,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// Skips spaces and comments; inside brackets, line breaks too.
    fn skip(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => self.at += 1,
                b'\\' if self.text.get(self.at + 1) == Some(&b'\n') => self.at += 2,
                b'\n' if newlines => self.at += 1,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// One line at top level: `NAME = value` is kept; any other statement is skipped whole
    /// (with its brackets, strings and indented block lines).
    fn statement(&mut self) -> Result<(), SyntaxError> {
        let start = self.at;
        let at_line_start = start == 0 || self.text[start - 1] == b'\n';
        if at_line_start
            && self
                .peek()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        {
            let name = self.identifier();
            self.skip(false);
            if self.peek() == Some(b'=') && self.text.get(self.at + 1) != Some(&b'=') {
                self.at += 1;
                self.skip(false);
                let value_start = self.at;
                match self.value() {
                    Ok(value) => {
                        self.names.insert(name, value);
                        self.skip(false);
                    }
                    // Only the JWT settings must be read; another setting that is no literal
                    // (an object's repr, a lambda) is code, and its line is skipped.
                    Err(err) if name == "SIMPLE_JWT" || name == "JWT_AUTH" => return Err(err),
                    Err(_) => {
                        self.at = value_start;
                        self.names.insert(name.clone(), Py::Code(name));
                    }
                }
            }
        }
        self.rest_of_statement()
    }

    /// Skips to the end of the logical line: past brackets and strings that span lines.
    fn rest_of_statement(&mut self) -> Result<(), SyntaxError> {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'"' | b'\'' => {
                    self.string()?;
                }
                b'#' => self.skip(false),
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    self.at += 1;
                }
                b')' | b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    self.at += 1;
                }
                b'\n' if depth == 0 => {
                    self.at += 1;
                    return Ok(());
                }
                _ => self.at += 1,
            }
        }
        Ok(())
    }

    fn identifier(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            self.at += 1;
        }
        self.source[start..self.at].to_owned()
    }

    /// A value, up to (not including) the `,`, closing bracket or line end that ends it.
    fn value(&mut self) -> Result<Py, SyntaxError> {
        let start = self.at;
        let value = self.primary()?;
        self.skip(false);
        // Arithmetic, a method call on a literal, a conditional: code, kept as written.
        match self.peek() {
            None | Some(b',' | b')' | b']' | b'}' | b':' | b'\n' | b';') => Ok(value),
            Some(_) => {
                self.skip_rest_of_value()?;
                Ok(Py::Code(self.source[start..self.at].trim().to_owned()))
            }
        }
    }

    fn skip_rest_of_value(&mut self) -> Result<(), SyntaxError> {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'"' | b'\'' => {
                    self.string()?;
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => return Ok(()),
                b')' | b']' | b'}' => depth -= 1,
                b',' | b':' | b'\n' | b';' if depth == 0 => return Ok(()),
                _ => {}
            }
            self.at += 1;
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Py, SyntaxError> {
        let start = self.at;
        match self.peek() {
            None => Err(self.error("a value is missing")),
            Some(b'"' | b'\'') => {
                let mut text = self.string()?;
                // Adjacent literals are one string, as in Python.
                loop {
                    self.skip(false);
                    if !matches!(self.peek(), Some(b'"' | b'\'')) {
                        break;
                    }
                    text.push_str(&self.string()?);
                }
                Ok(Py::Str(text))
            }
            Some(b'[') => Ok(Py::List(self.items(b']')?.0)),
            Some(b'(') => {
                // `(x)` is `x`; `(x,)` and `(x, y)` are tuples.
                let (mut items, comma) = self.items(b')')?;
                match (items.len(), comma) {
                    (1, false) => Ok(items.remove(0)),
                    _ => Ok(Py::List(items)),
                }
            }
            Some(b'{') => self.dict(),
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let name = self.identifier();
                if matches!(self.peek(), Some(b'"' | b'\''))
                    && name.len() <= 2
                    && name.chars().all(|c| "rRbBuUfF".contains(c))
                {
                    // A prefixed string: r"..." is read as written; f"..." is code.
                    let text = self.string_raw(name.contains(['r', 'R']))?;
                    if name.contains(['f', 'F']) {
                        return Ok(Py::Code(self.source[start..self.at].to_owned()));
                    }
                    return Ok(Py::Str(text));
                }
                self.skip(false);
                if self.peek() == Some(b'(') {
                    return self.call(&name, start);
                }
                Ok(match name.as_str() {
                    "True" => Py::Bool(true),
                    "False" => Py::Bool(false),
                    "None" => Py::None,
                    _ => match self.names.get(&name) {
                        Some(value) if !matches!(value, Py::Code(_)) => value.clone(),
                        _ => Py::Code(name),
                    },
                })
            }
            Some(c) => Err(self.error(format!("unexpected {:?}", c as char))),
        }
    }

    /// `timedelta(...)` (under any module prefix) is a duration; any other call is code.
    fn call(&mut self, name: &str, start: usize) -> Result<Py, SyntaxError> {
        let open = self.at;
        let is_timedelta = name == "timedelta" || name.ends_with(".timedelta");
        if !is_timedelta {
            self.at = open;
            self.skip_brackets()?;
            return Ok(Py::Code(self.source[start..self.at].to_owned()));
        }
        self.at += 1;
        let mut seconds = 0.0;
        let mut position = 0;
        loop {
            self.skip(true);
            if self.peek() == Some(b')') {
                self.at += 1;
                return Ok(Py::Duration(seconds));
            }
            let arg_start = self.at;
            let mut unit = None;
            if self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                let word = self.identifier();
                self.skip(false);
                if self.peek() == Some(b'=') {
                    self.at += 1;
                    self.skip(false);
                    unit = Some(word);
                } else {
                    self.at = arg_start;
                }
            }
            let unit = unit.unwrap_or_else(|| {
                // timedelta(days, seconds, microseconds, milliseconds, minutes, hours, weeks)
                [
                    "days",
                    "seconds",
                    "microseconds",
                    "milliseconds",
                    "minutes",
                    "hours",
                    "weeks",
                ]
                .get(position)
                .unwrap_or(&"")
                .to_string()
            });
            position += 1;
            let amount = match self.value()? {
                Py::Int(n) => n as f64,
                Py::Float(x) => x,
                _ => {
                    self.at = open;
                    self.skip_brackets()?;
                    return Ok(Py::Code(self.source[start..self.at].to_owned()));
                }
            };
            let per = match unit.as_str() {
                "weeks" => 7.0 * 86_400.0,
                "days" => 86_400.0,
                "hours" => 3_600.0,
                "minutes" => 60.0,
                "seconds" => 1.0,
                "milliseconds" => 0.001,
                "microseconds" => 0.000_001,
                other => return Err(self.error(format!("timedelta has no argument {other:?}"))),
            };
            seconds += amount * per;
            self.skip(true);
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b')') => {}
                _ => return Err(self.error("expected , or ) in timedelta(...)")),
            }
        }
    }

    fn skip_brackets(&mut self) -> Result<(), SyntaxError> {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'"' | b'\'' => {
                    self.string()?;
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.at += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
        Err(self.error("a bracket is never closed"))
    }

    /// The items of a list or tuple, and whether a comma was seen.
    fn items(&mut self, close: u8) -> Result<(Vec<Py>, bool), SyntaxError> {
        self.at += 1;
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            self.skip(true);
            if self.peek() == Some(close) {
                self.at += 1;
                return Ok((items, comma));
            }
            items.push(self.value()?);
            self.skip(true);
            match self.peek() {
                Some(b',') => {
                    comma = true;
                    self.at += 1;
                }
                Some(c) if c == close => {}
                _ => return Err(self.error(format!("expected , or {}", close as char))),
            }
        }
    }

    fn dict(&mut self) -> Result<Py, SyntaxError> {
        self.at += 1;
        let mut entries = Vec::new();
        loop {
            self.skip(true);
            if self.peek() == Some(b'}') {
                self.at += 1;
                return Ok(Py::Dict(entries));
            }
            let key = self.value()?;
            self.skip(true);
            if self.peek() != Some(b':') {
                return Err(self.error("expected : after a dict key"));
            }
            self.at += 1;
            self.skip(true);
            let value = self.value()?;
            entries.push((key, value));
            self.skip(true);
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {}
                _ => return Err(self.error("expected , or } in a dict")),
            }
        }
    }

    fn number(&mut self) -> Result<Py, SyntaxError> {
        let start = self.at;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.at += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_')
        {
            self.at += 1;
        }
        let text = self.source[start..self.at].replace('_', "");
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Py::Int(n));
        }
        text.parse::<f64>()
            .map(Py::Float)
            .map_err(|_| self.error(format!("{text:?} is not a number")))
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.string_raw(false)
    }

    /// A quoted string (single, double or triple quotes) with Python's common escapes.
    fn string_raw(&mut self, raw: bool) -> Result<String, SyntaxError> {
        let quote = self.text[self.at];
        let triple = self.text.get(self.at..self.at + 3) == Some(&[quote, quote, quote][..]);
        self.at += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("a string is never closed"));
            };
            if c == quote {
                if !triple {
                    self.at += 1;
                    return Ok(out);
                }
                if self.text.get(self.at..self.at + 3) == Some(&[quote, quote, quote][..]) {
                    self.at += 3;
                    return Ok(out);
                }
            }
            if c == b'\n' && !triple {
                return Err(self.error("a string is never closed"));
            }
            if c == b'\\' && !raw {
                let escaped = self.text.get(self.at + 1).copied();
                self.at += 2;
                match escaped {
                    Some(b'n') => out.push('\n'),
                    Some(b't') => out.push('\t'),
                    Some(b'r') => out.push('\r'),
                    Some(b'0') => out.push('\0'),
                    Some(b'\n') => {}
                    Some(c @ (b'\\' | b'\'' | b'"')) => out.push(c as char),
                    Some(other) => {
                        out.push('\\');
                        out.push(other as char);
                    }
                    None => return Err(self.error("a string is never closed")),
                }
                continue;
            }
            // Copy one whole character (settings may hold any UTF-8).
            let rest = &self.source[self.at..];
            let ch = rest.chars().next().unwrap_or_default();
            out.push(ch);
            self.at += ch.len_utf8().max(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_durations_and_code_are_read() {
        let source = r#"
import os
from datetime import timedelta
SECRET_KEY = 'django-insecure-abc'  # a comment
if DEBUG:
    X = 1
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
    'REFRESH_TOKEN_LIFETIME': datetime.timedelta(days=1, hours=12),
    "ROTATE": True, "NONE": None, "N": 1_000, "F": 0.5,
    "TYPES": ("Bearer", "JWT"), "ONE": ("Bearer"), "TUPLE": ("Bearer",),
    "KEY": SECRET_KEY,
    "ENV": os.environ.get("KEY", "x,y"),
    "SUM": 60 * 5,
    "LONG": "a" "b",
    "WEEKS": timedelta(weeks=2),  # trailing comma
}
"#;
        let names = top_level_assignments(source).expect("reads");
        let Some(Py::Dict(entries)) = names.get("SIMPLE_JWT") else {
            panic!("{names:?}");
        };
        let get = |key: &str| {
            entries
                .iter()
                .find(|(k, _)| *k == Py::Str(key.into()))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{key}"))
        };
        assert_eq!(get("ACCESS_TOKEN_LIFETIME"), Py::Duration(300.0));
        assert_eq!(get("REFRESH_TOKEN_LIFETIME"), Py::Duration(129_600.0));
        assert_eq!(get("ROTATE"), Py::Bool(true));
        assert_eq!(get("NONE"), Py::None);
        assert_eq!(get("N"), Py::Int(1000));
        assert_eq!(get("F"), Py::Float(0.5));
        assert_eq!(
            get("TYPES"),
            Py::List(vec![Py::Str("Bearer".into()), Py::Str("JWT".into())])
        );
        assert_eq!(get("ONE"), Py::Str("Bearer".into()));
        assert_eq!(get("TUPLE"), Py::List(vec![Py::Str("Bearer".into())]));
        assert_eq!(get("KEY"), Py::Str("django-insecure-abc".into()));
        assert_eq!(
            get("ENV"),
            Py::Code(r#"os.environ.get("KEY", "x,y")"#.into())
        );
        assert_eq!(get("SUM"), Py::Code("60 * 5".into()));
        assert_eq!(get("LONG"), Py::Str("ab".into()));
        assert_eq!(get("WEEKS"), Py::Duration(14.0 * 86_400.0));
    }

    #[test]
    fn broken_dicts_are_refused_with_their_line() {
        let err =
            top_level_assignments("A = 1\nSIMPLE_JWT = {\n  'X': 1\n  'Y': 2\n}\n").unwrap_err();
        assert_eq!(err.to_string(), "line 4: expected , or } in a dict");
        let err = top_level_assignments("SIMPLE_JWT = {'X': timedelta(fortnights=1)}").unwrap_err();
        assert!(err.to_string().contains("fortnights"), "{err}");
        let names = top_level_assignments("X = <function f at 0x1>\nSIMPLE_JWT = {}\n")
            .expect("other settings may be anything");
        assert_eq!(names.get("SIMPLE_JWT"), Some(&Py::Dict(Vec::new())));
        let err = top_level_assignments("SIMPLE_JWT = {'X': 'open}").unwrap_err();
        assert!(err.to_string().contains("never closed"), "{err}");
    }
}
