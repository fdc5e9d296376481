//! The canonical checksum: what the README promises, pinned by tests.
//!
//! ```text
//! checksum = hex(SHA-256( "reconfig-checksum-v1\n" || object* ))
//! object   = frame(kind) || frame(name) || u64be(count) || key*      -- sorted by (kind, name)
//! key      = frame(key) || 0x00                                      -- selected but absent
//!          | frame(key) || 0x01 || digest                            -- sorted by key bytes
//! frame(x) = u64be(len(x)) || x
//! digest   = SHA-256(value bytes), or HMAC-SHA256(secret key, value bytes) for Secrets when keyed
//! ```
//!
//! Value bytes are what the pod reads: ConfigMap `data` as UTF-8, `binaryData`
//! and Secret `data` base64-decoded, Secret `stringData` as UTF-8.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::object::{ConfigKind, ConfigObject, KeyDigest};

const DOMAIN: &[u8] = b"reconfig-checksum-v1\n";

/// Which keys of an object a pod template reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Every key: a volume without `items`, or a dependency declared by name.
    pub whole: bool,
    /// Every key that reaches the environment: `envFrom`.
    pub env: bool,
    /// Named keys (`items`, `configMapKeyRef`, `secretKeyRef`), sorted, each once: a list, not
    /// a set, since every reference of every workload holds one until its resolution, and a
    /// `BTreeSet` costs a 280-byte node for one key.
    keys: Vec<String>,
}

impl Selection {
    pub fn whole() -> Self {
        Selection {
            whole: true,
            ..Selection::default()
        }
    }

    pub fn env() -> Self {
        Selection {
            env: true,
            ..Selection::default()
        }
    }

    pub fn keys<I: IntoIterator<Item = String>>(keys: I) -> Self {
        let mut keys: Vec<String> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        keys.shrink_to_fit();
        Selection {
            keys,
            ..Selection::default()
        }
    }

    /// The named keys, sorted.
    pub fn named(&self) -> &[String] {
        &self.keys
    }

    pub fn merge(&mut self, other: &Selection) {
        self.whole |= other.whole;
        self.env |= other.env;
        self.keys.extend(other.keys.iter().cloned());
        self.keys.sort_unstable();
        self.keys.dedup();
    }

    /// The keys this selection reads from `object`, with `None` for named keys it lacks.
    pub fn resolve<'o>(
        &'o self,
        object: &'o ConfigObject,
    ) -> BTreeMap<&'o str, Option<&'o KeyDigest>> {
        let mut out: BTreeMap<&'o str, Option<&'o KeyDigest>> = object
            .keys
            .iter()
            .filter(|(_, d)| self.whole || (self.env && d.in_env))
            .map(|(k, d)| (k.as_str(), Some(d)))
            .collect();
        for key in &self.keys {
            out.insert(key.as_str(), object.keys.get(key));
        }
        out
    }
}

/// One object's part of a pod template's checksum.
#[derive(Debug, Clone)]
pub struct Contribution<'o> {
    pub object: &'o ConfigObject,
    pub keys: BTreeMap<&'o str, Option<&'o KeyDigest>>,
}

/// Computes the checksum over contributions, in canonical order whatever order they come in.
///
/// An object is named by its logical name: a versioned object (`app-1a2b3c4d5e`, labelled
/// `reconfig/versioned-from: app`) counts as `app`, so versioning it changes no checksum and
/// `inject` on its own output changes nothing.
pub fn checksum(contributions: &[Contribution<'_>]) -> String {
    hex::encode(checksum_digest(contributions))
}

/// [`checksum`] as its 32 bytes, which is how a decision kept until output holds it.
pub fn checksum_digest(contributions: &[Contribution<'_>]) -> [u8; 32] {
    let mut sorted: Vec<&Contribution<'_>> = contributions.iter().collect();
    sorted.sort_by(|a, b| {
        (a.object.kind, a.object.logical_name()).cmp(&(b.object.kind, b.object.logical_name()))
    });
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    for c in sorted {
        frame(&mut hasher, kind_tag(c.object.kind));
        frame(&mut hasher, c.object.logical_name().as_bytes());
        hasher.update((c.keys.len() as u64).to_be_bytes());
        for (key, digest) in &c.keys {
            frame(&mut hasher, key.as_bytes());
            match digest {
                None => hasher.update([0u8]),
                Some(d) => {
                    hasher.update([1u8]);
                    hasher.update(d.digest);
                }
            }
        }
    }
    hasher.finalize().into()
}

/// The checksum of a whole object's data (every key), as a pod template reading all of it
/// would get: what a versioned object's name and its `reconfig/data-checksum` come from.
pub fn data_checksum(object: &ConfigObject) -> String {
    checksum(&[Contribution {
        object,
        keys: Selection::whole().resolve(object),
    }])
}

fn kind_tag(kind: ConfigKind) -> &'static [u8] {
    kind.as_str().as_bytes()
}

fn frame(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::object::value_digest;

    fn object(kind: ConfigKind, name: &str, keys: &[(&str, &str)]) -> ConfigObject {
        let keys = keys
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    KeyDigest {
                        digest: value_digest(kind, None, v.as_bytes()),
                        in_env: true,
                    },
                )
            })
            .collect();
        ConfigObject::new(kind, name, None, keys)
    }

    /// Rebuilds the bytes exactly as the module documentation describes them.
    #[test]
    fn matches_the_documented_encoding() {
        let cm = object(ConfigKind::ConfigMap, "app", &[("a", "one")]);
        let secret = object(ConfigKind::Secret, "creds", &[("pw", "x")]);
        let whole = Selection::whole();
        let missing = Selection::keys(["nope".to_string()]);
        let got = checksum(&[
            Contribution {
                object: &secret,
                keys: missing.resolve(&secret),
            },
            Contribution {
                object: &cm,
                keys: whole.resolve(&cm),
            },
        ]);

        let mut bytes = b"reconfig-checksum-v1\n".to_vec();
        let frame = |bytes: &mut Vec<u8>, s: &[u8]| {
            bytes.extend((s.len() as u64).to_be_bytes());
            bytes.extend(s);
        };
        frame(&mut bytes, b"ConfigMap");
        frame(&mut bytes, b"app");
        bytes.extend(1u64.to_be_bytes());
        frame(&mut bytes, b"a");
        bytes.push(1);
        bytes.extend(Sha256::digest(b"one"));
        frame(&mut bytes, b"Secret");
        frame(&mut bytes, b"creds");
        bytes.extend(1u64.to_be_bytes());
        frame(&mut bytes, b"nope");
        bytes.push(0);
        assert_eq!(got, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(
            got,
            "d4f21d4573c030e744fa1407342212235ef5232e7568d4fc7e602f5d1945bb39"
        );
    }

    #[test]
    fn selections_merge() {
        let cm = object(ConfigKind::ConfigMap, "app", &[("a", "1"), ("b", "2")]);
        let mut s = Selection::keys(["a".to_string()]);
        assert_eq!(s.resolve(&cm).len(), 1);
        s.merge(&Selection::env());
        assert_eq!(s.resolve(&cm).len(), 2);
    }
}
