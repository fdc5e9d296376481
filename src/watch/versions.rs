//! Which versions a `--publish` folder holds, and what became of them: the record kept beside
//! them, so that a sidecar that restarts still knows which version to put back and which ones
//! not to try again.
//!
//! Pure: the model and its text form. `publish.rs` reads and writes it, as
//! `..reconfig_versions` in the published folder (a `..` name, which apps reading the visible
//! names never see, as kubelet's own `..data`):
//!
//! ```text
//! reconfig-versions-v1
//! current <hash> <stage>     what ..data points at, verified or not
//! verified <hash> <stage>    the newest version the app was seen to run (kept on disk)
//! failed <hash>              versions that failed verification, oldest first
//! ```

/// The file's first line; another one is not ours, or not this format.
const HEADER: &str = "reconfig-versions-v1";
/// Failed versions remembered; older ones are forgotten.
pub const MAX_FAILED: usize = 16;
/// More than any record written here takes.
pub const MAX_SIZE: u64 = 64 * 1024;

/// A published version: its content hash and the stage folder holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub hash: String,
    pub stage: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    pub current: Option<Entry>,
    pub verified: Option<Entry>,
    /// Oldest first, at most [`MAX_FAILED`].
    pub failed: Vec<String>,
}

impl Versions {
    /// Reads the record; a stage name that is not a stage folder's, or a hash that is not hex,
    /// is refused, so the record can never lead out of the published folder.
    pub fn parse(text: &str, is_stage: impl Fn(&str) -> bool) -> Result<Versions, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("does not start with {HEADER}"));
        }
        let mut versions = Versions::default();
        for (n, line) in lines.enumerate() {
            let bad = |why: &str| format!("line {}: {why}", n + 2);
            let fields: Vec<&str> = line.split(' ').collect();
            let hash = |at: usize| -> Result<String, String> {
                let h = fields.get(at).copied().unwrap_or_default();
                if h.is_empty() || h.len() > 128 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("not a content hash"));
                }
                Ok(h.to_string())
            };
            let entry = || -> Result<Entry, String> {
                let stage = fields.get(2).copied().unwrap_or_default();
                if fields.len() != 3 || !is_stage(stage) {
                    return Err(bad("not a stage folder"));
                }
                Ok(Entry {
                    hash: hash(1)?,
                    stage: stage.to_string(),
                })
            };
            match fields[0] {
                "current" => versions.current = Some(entry()?),
                "verified" => versions.verified = Some(entry()?),
                "failed" if fields.len() == 2 => versions.fail(&hash(1)?),
                "" => {}
                other => return Err(bad(&format!("unknown record {other:?}"))),
            }
        }
        Ok(versions)
    }

    pub fn render(&self) -> String {
        let mut out = format!("{HEADER}\n");
        for (name, entry) in [("current", &self.current), ("verified", &self.verified)] {
            if let Some(e) = entry {
                out.push_str(&format!("{name} {} {}\n", e.hash, e.stage));
            }
        }
        for hash in &self.failed {
            out.push_str(&format!("failed {hash}\n"));
        }
        out
    }

    /// Remembers a version that failed verification (moved to the end if known).
    pub fn fail(&mut self, hash: &str) {
        self.failed.retain(|h| h != hash);
        self.failed.push(hash.to_string());
        if self.failed.len() > MAX_FAILED {
            self.failed.remove(0);
        }
    }

    pub fn has_failed(&self, hash: &str) -> bool {
        self.failed.iter().any(|h| h == hash)
    }

    /// Whether the version in place is the verified one.
    pub fn current_is_verified(&self) -> bool {
        self.current.is_some() && self.current == self.verified
    }

    /// Stage folders the record needs kept.
    pub fn keeps(&self, stage: &str) -> bool {
        [&self.current, &self.verified]
            .iter()
            .any(|e| e.as_ref().is_some_and(|e| e.stage == stage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str) -> bool {
        name.starts_with("..2") && !name.contains('/')
    }

    #[test]
    fn round_trips_and_refuses_what_could_lead_out() {
        let mut v = Versions {
            current: Some(Entry {
                hash: "ab12".into(),
                stage: "..2026_01_01_00_00_00.1".into(),
            }),
            verified: Some(Entry {
                hash: "cd34".into(),
                stage: "..2026_01_01_00_00_00.2".into(),
            }),
            failed: Vec::new(),
        };
        v.fail("ef56");
        v.fail("ab12");
        v.fail("ef56");
        assert_eq!(v.failed, ["ab12", "ef56"]);
        let text = v.render();
        assert_eq!(Versions::parse(&text, stage), Ok(v.clone()));
        assert!(v.keeps("..2026_01_01_00_00_00.2") && !v.keeps("..2026_01_01_00_00_00.3"));
        assert!(!v.current_is_verified());
        for bad in [
            "",
            "other\n",
            "reconfig-versions-v1\ncurrent ab ../../etc\n",
            "reconfig-versions-v1\nverified xyz ..2026_01_01_00_00_00.1\n",
            "reconfig-versions-v1\nfailed\n",
            "reconfig-versions-v1\nnext ab\n",
        ] {
            assert!(Versions::parse(bad, stage).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_the_newest_failures_are_remembered() {
        let mut v = Versions::default();
        for i in 0..(MAX_FAILED + 3) {
            v.fail(&format!("{i:x}"));
        }
        assert_eq!(v.failed.len(), MAX_FAILED);
        assert!(!v.has_failed("0") && v.has_failed(&format!("{:x}", MAX_FAILED + 2)));
    }
}
