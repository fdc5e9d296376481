//! What `check` and `plan` print for CI systems: GitHub Actions workflow commands.
//!
//! Both commands have findings that belong on a pull request; GitHub shows a line such as
//! `::error file=app.yaml,line=2,col=9::message` printed by a step as an annotation on that
//! line of the diff. Its escaping rules are easy to get subtly wrong (a `,` in a file name ends
//! the property, a newline ends the command), so they live here once, with their tests.

use std::fmt::Write as _;

/// A GitHub workflow command's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// Where an annotation points; every part is optional, as in GitHub's syntax.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place<'a> {
    pub file: Option<&'a str>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub title: Option<&'a str>,
}

/// One workflow command line (without the newline): `::LEVEL PROPS::MESSAGE`.
pub fn workflow_command(level: Level, place: &Place<'_>, message: &str) -> String {
    let mut props = Vec::new();
    if let Some(file) = place.file {
        props.push(format!("file={}", escape_property(file)));
    }
    if let Some(line) = place.line {
        props.push(format!("line={line}"));
        if let Some(column) = place.column {
            props.push(format!("col={column}"));
        }
    }
    if let Some(title) = place.title {
        props.push(format!("title={}", escape_property(title)));
    }
    let mut out = format!("::{}", level.as_str());
    if !props.is_empty() {
        let _ = write!(out, " {}", props.join(","));
    }
    let _ = write!(out, "::{}", escape_data(message));
    out
}

/// The message part: `%`, CR and LF are written as `%25`, `%0D`, `%0A` (GitHub's
/// `escapeData` in @actions/core), so a multi-line message stays one command.
pub fn escape_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// A property value: as the message, plus `:` (`%3A`) and `,` (`%2C`), which would end it
/// (`escapeProperty` in @actions/core).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Undoes GitHub's escaping, as the runner does when it reads a command.
    fn unescape(text: &str) -> String {
        text.replace("%0D", "\r")
            .replace("%0A", "\n")
            .replace("%3A", ":")
            .replace("%2C", ",")
            .replace("%25", "%")
    }

    /// Reads a workflow command back the way the runner's parser does: `::` + name, then up to
    /// the next `::` the properties split on `,` and `=`, and the rest is the message.
    fn parse(line: &str) -> (String, Vec<(String, String)>, String) {
        let rest = line.strip_prefix("::").expect("starts with ::");
        let (head, message) = rest.split_once("::").expect("a second ::");
        let (name, props) = head.split_once(' ').unwrap_or((head, ""));
        let props = props
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').expect("key=value");
                (k.to_string(), unescape(v))
            })
            .collect();
        (name.to_string(), props, unescape(message))
    }

    #[test]
    fn commands_follow_the_workflow_command_syntax() {
        let place = Place {
            file: Some("deploy/a,b:c.yaml"),
            line: Some(2),
            column: Some(9),
            title: Some("reconfig check: schema"),
        };
        let line = workflow_command(Level::Error, &place, "100% wrong:\nsee\r\nhere, now");
        assert_eq!(
            line,
            "::error file=deploy/a%2Cb%3Ac.yaml,line=2,col=9,title=reconfig check%3A schema\
             ::100%25 wrong:%0Asee%0D%0Ahere, now"
        );
        assert!(!line.contains('\n') && !line.contains('\r'));
        let (name, props, message) = parse(&line);
        assert_eq!(name, "error");
        assert_eq!(
            props,
            vec![
                ("file".to_string(), "deploy/a,b:c.yaml".to_string()),
                ("line".to_string(), "2".to_string()),
                ("col".to_string(), "9".to_string()),
                ("title".to_string(), "reconfig check: schema".to_string()),
            ]
        );
        assert_eq!(message, "100% wrong:\nsee\r\nhere, now");
    }

    #[test]
    fn properties_are_optional_and_a_column_needs_a_line() {
        assert_eq!(
            workflow_command(Level::Notice, &Place::default(), "ok"),
            "::notice::ok"
        );
        let place = Place {
            column: Some(3),
            ..Place::default()
        };
        assert_eq!(
            workflow_command(Level::Warning, &place, "x"),
            "::warning::x"
        );
    }
}
