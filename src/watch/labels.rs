//! The labels of the objects the watched folders hold, for policy rules that select by label.
//!
//! The sidecar sees files, not objects, yet `check --manifests` and `admit` see labels: a rule
//! selecting `reconfig/validate: "true"` must select the same ConfigMap in the pod too. So when
//! the policy has such a rule and a `--dir` names its object (`configmap/NAME=PATH`), the
//! labels are asked of the API server (the `kube` room implements [`LabelReader`]) before each
//! new content is judged. A failed read keeps the labels last read (none before the first:
//! the rule does not apply, with a warning), so the API server being away never stops a reload.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::policy::Identity;

/// An object's labels, or why they could not be read.
pub type LabelsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<BTreeMap<String, String>, String>> + Send + 'a>>;

/// Reads an object's labels (from the API server).
pub trait LabelReader: Send + Sync {
    fn labels<'a>(&'a self, object: &'a Identity) -> LabelsFuture<'a>;
}
