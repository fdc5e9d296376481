//! `--verify-metric URL NAME[{labels}]OP VALUE`: the condition, and Prometheus's text format.
//!
//! Pure: no I/O. The verifier (`verify.rs`) fetches the text and asks [`Condition::judge`]
//! whether the app took the config. An app often exposes whether its last reload worked
//! (Prometheus: `prometheus_config_last_reload_successful`), but such a gauge still says 1 from
//! the reload before until the new one happens; so a condition may compare with the time the
//! actions started (`{action_time}`), and the Prometheus reload gauge gets that check built in.

use std::collections::BTreeMap;
use std::fmt;

/// Prometheus's own "did the last reload work" gauge.
pub const PROMETHEUS_RELOAD_OK: &str = "prometheus_config_last_reload_successful";
/// Prometheus's time of the last successful reload, in whole seconds.
pub const PROMETHEUS_RELOAD_TIME: &str = "prometheus_config_last_reload_success_timestamp_seconds";
/// The placeholder for the Unix time (whole seconds, rounded down) at which the actions for
/// the version started.
pub const ACTION_TIME: &str = "{action_time}";
/// More bytes than any metrics page needs; the verifier reads no further.
pub const MAX_TEXT: usize = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

impl Op {
    /// Longest spellings first, so `>=` is not read as `>`.
    const SPELLINGS: [(&'static str, Op); 6] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        (">", Op::Gt),
        ("<", Op::Lt),
    ];

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Ge => left >= right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Lt => left < right,
        }
    }

    fn text(self) -> &'static str {
        Op::SPELLINGS
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("?", |(s, _)| s)
    }
}

/// The right-hand side of a condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Number(f64),
    /// [`ACTION_TIME`].
    ActionTime,
}

/// One comparison on the samples of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub name: String,
    /// Labels a sample must carry (it may carry more).
    pub labels: BTreeMap<String, String>,
    pub op: Op,
    pub value: Value,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            write!(f, "{{{}}}", labels.join(","))?;
        }
        f.write_str(self.op.text())?;
        match self.value {
            Value::Number(n) => write!(f, "{n}"),
            Value::ActionTime => f.write_str(ACTION_TIME),
        }
    }
}

impl Condition {
    /// Parses `NAME[{k="v",…}]OPVALUE`, e.g. `prometheus_config_last_reload_successful==1` or
    /// `up{job="app"}>=1`; VALUE is a number or `{action_time}`.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let text = text.trim();
        let bad = |why: &str| format!("`{text}`: {why} (want NAME[{{label=\"value\"}}]==VALUE)");
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(text.len());
        let name = &text[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad("no metric name"));
        }
        let mut rest = text[name_end..].trim_start();
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let close = inner.find('}').ok_or_else(|| bad("no closing `}`"))?;
            labels = parse_labels(&inner[..close]).map_err(|why| bad(&why))?;
            rest = inner[close + 1..].trim_start();
        }
        let (op, value) = Op::SPELLINGS
            .iter()
            .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v.trim())))
            .ok_or_else(|| bad("no comparison (==, !=, >=, <=, >, <)"))?;
        let value = if value == ACTION_TIME {
            Value::ActionTime
        } else {
            Value::Number(
                parse_number(value).ok_or_else(|| bad(&format!("`{value}` is not a number")))?,
            )
        };
        Ok(Condition {
            name: name.to_string(),
            labels,
            op,
            value,
        })
    }

    /// The conditions a user's one implies: Prometheus's reload gauge says 1 from the previous
    /// reload until the next one happens, so its success time must also be at least the
    /// time the actions started.
    pub fn with_implied(self) -> Vec<Condition> {
        let implied = (self.name == PROMETHEUS_RELOAD_OK
            && self.op == Op::Eq
            && self.value == Value::Number(1.0))
        .then(|| Condition {
            name: PROMETHEUS_RELOAD_TIME.to_string(),
            labels: self.labels.clone(),
            op: Op::Ge,
            value: Value::ActionTime,
        });
        std::iter::once(self).chain(implied).collect()
    }

    /// `Ok` when at least one sample matches and every matching sample satisfies the
    /// comparison; otherwise what was seen. `action_time` is Unix seconds.
    pub fn judge(&self, samples: &[Sample], action_time: u64) -> Result<(), String> {
        let right = match self.value {
            Value::Number(n) => n,
            Value::ActionTime => action_time as f64,
        };
        let matching: Vec<&Sample> = samples
            .iter()
            .filter(|s| {
                s.name == self.name
                    && self
                        .labels
                        .iter()
                        .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == v))
            })
            .collect();
        if matching.is_empty() {
            return Err(format!("{self}: no such sample"));
        }
        match matching.iter().find(|s| !self.op.holds(s.value, right)) {
            None => Ok(()),
            Some(s) if self.value == Value::ActionTime => Err(format!(
                "{self}: it is {} ({action_time} is when the actions started)",
                s.value
            )),
            Some(s) => Err(format!("{self}: it is {}", s.value)),
        }
    }
}

fn parse_number(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// `k="v",k2="v2"` with Prometheus's escapes (`\\`, `\"`, `\n`).
fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("a label without `=`")?;
        let key = rest[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{key}` is not a label name"));
        }
        let body = rest[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("a label value must be quoted")?;
        let mut value = String::new();
        let mut end = None;
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or("an unterminated label value")?;
        labels.insert(key.to_string(), value);
        rest = body[end..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(labels)
}

/// One sample of the text exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a Prometheus (or OpenMetrics) text page; lines that do not parse are
/// skipped, as comments are.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines().filter_map(sample).collect()
}

fn sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_ascii_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let close = closing_brace(inner)?;
        labels = parse_labels(&inner[..close]).ok()?;
        rest = &inner[close + 1..];
    }
    let value = parse_number(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The `}` that closes a label set, skipping any inside quoted values.
fn closing_brace(text: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "\
# HELP prometheus_config_last_reload_successful Whether the last configuration reload attempt was successful.
# TYPE prometheus_config_last_reload_successful gauge
prometheus_config_last_reload_successful 1
prometheus_config_last_reload_success_timestamp_seconds 1.7e+09
http_requests_total{code=\"200\",handler=\"/{x}\"} 1027 1395066363000
up{job=\"a\"} 1
up{job=\"b\"} 0
";

    #[test]
    fn conditions_parse_with_labels_and_every_operator() {
        let c = Condition::parse("up{job=\"a\", instance=\"x\\\"y\"} >= 1").expect("parses");
        assert_eq!(c.name, "up");
        assert_eq!(c.labels["instance"], "x\"y");
        assert_eq!((c.op, c.value), (Op::Ge, Value::Number(1.0)));
        for (text, op) in [
            ("a==1", Op::Eq),
            ("a!=1", Op::Ne),
            ("a<=1", Op::Le),
            ("a>1", Op::Gt),
            ("a<1", Op::Lt),
        ] {
            assert_eq!(Condition::parse(text).expect(text).op, op);
        }
        let t = Condition::parse("x_seconds>={action_time}").expect("parses");
        assert_eq!(t.value, Value::ActionTime);
        assert_eq!(t.to_string(), "x_seconds>={action_time}");
        for bad in [
            "",
            "==1",
            "a",
            "a=1",
            "a==one",
            "a{b=c}==1",
            "a{b=\"c\"==1",
            "9a==1",
        ] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_text_format_is_read_with_labels_timestamps_and_braces_in_values() {
        let s = samples(PAGE);
        assert_eq!(s.len(), 5, "{s:?}");
        assert_eq!(s[2].labels["handler"], "/{x}");
        assert_eq!(s[2].value, 1027.0);
        assert_eq!(s[1].value, 1.7e9);
    }

    #[test]
    fn every_matching_sample_must_hold_and_one_must_exist() {
        let s = samples(PAGE);
        let judge = |text: &str| Condition::parse(text).expect(text).judge(&s, 0);
        assert_eq!(judge("prometheus_config_last_reload_successful==1"), Ok(()));
        assert_eq!(judge("up{job=\"a\"}==1"), Ok(()));
        assert_eq!(judge("up==1"), Err("up==1: it is 0".into()));
        assert_eq!(judge("down==1"), Err("down==1: no such sample".into()));
    }

    #[test]
    fn prometheus_reload_gauge_also_needs_a_reload_after_the_action() {
        let all = Condition::parse("prometheus_config_last_reload_successful==1")
            .expect("parses")
            .with_implied();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1].to_string(),
            "prometheus_config_last_reload_success_timestamp_seconds>={action_time}"
        );
        let s = samples(PAGE);
        assert_eq!(all[1].judge(&s, 1_700_000_000), Ok(()));
        let late = all[1]
            .judge(&s, 1_700_000_001)
            .expect_err("older than the action");
        assert!(late.contains("when the actions started"), "{late}");
        assert_eq!(
            Condition::parse("up==1").expect("up").with_implied().len(),
            1
        );
    }
}
