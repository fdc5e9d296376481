//! Globs for names, namespaces and keys: `*` (any run of characters) and `?` (one character).
//!
//! Kubernetes names and ConfigMap keys hold no `/`, so there is no path-aware `**`; a pattern
//! without wildcards matches only itself.

/// Whether `text` matches `pattern` (`*` any run, `?` one character), in linear space and
/// O(pattern × text) time at worst: no backtracking blow-up on `a*a*a*…`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it has consumed up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether `text` matches any of `patterns`; an empty list matches everything.
pub fn any(patterns: &[String], text: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| matches(p, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("app-*", "app-web"));
        assert!(!matches("app-*", "web-app"));
        assert!(matches("*.yaml", "config.yaml"));
        assert!(!matches("*.yaml", "config.yaml.bak"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("prod-*-eu", "prod-web-eu"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
        assert!(matches("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!matches("*a*b*c*", "xxaxxcxxbxx"));
    }

    #[test]
    fn no_exponential_backtracking() {
        let text = "a".repeat(10_000);
        let pattern = format!("{}b", "a*".repeat(50));
        let started = std::time::Instant::now();
        assert!(!matches(&pattern, &text));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn empty_lists_match_everything() {
        assert!(any(&[], "x"));
        assert!(any(&["y".into(), "x*".into()], "xz"));
        assert!(!any(&["y".into()], "x"));
    }
}
