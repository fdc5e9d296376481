//! Mounts that look like config but never change: a single file or a kubelet `subPath` mount.

use std::path::Path;

/// Why a `--dir` will never see updates, if it looks that way: a single file or a subPath mount.
pub fn never_updates(dir: &Path) -> Option<String> {
    if dir.is_file() {
        return Some(format!(
            "{} is a single file: a ConfigMap mounted with subPath never updates, and an edited file is replaced, not changed; mount the whole volume and watch its folder",
            dir.display()
        ));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let canonical = std::fs::canonicalize(dir).ok()?;
    subpath_mount(&mountinfo, &canonical).then(|| {
        format!(
            "{} is a subPath mount: kubelet never updates those; mount the whole volume and watch its root",
            dir.display()
        )
    })
}

/// A mount whose source is a sub-folder of its filesystem (field 4 is not `/`) and that holds no `..data`.
fn subpath_mount(mountinfo: &str, dir: &Path) -> bool {
    let dir = dir.display().to_string();
    mountinfo.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.len() > 4
            && fields[4] == dir
            && fields[3] != "/"
            && fields[3].contains("/volumes/kubernetes.io~")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_files_and_subpath_mounts_are_flagged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.yaml");
        std::fs::write(&file, "a: 1").expect("write");
        assert!(never_updates(&file).is_some_and(|w| w.contains("single file")));
        assert!(never_updates(dir.path()).is_none());
        let info = "1210 1190 0:52 /var/lib/kubelet/pods/x/volumes/kubernetes.io~configmap/cfg/..2026/app.yaml /etc/app rw - tmpfs tmpfs rw\n";
        assert!(subpath_mount(info, Path::new("/etc/app")));
        assert!(!subpath_mount(info, Path::new("/etc/other")));
    }
}
