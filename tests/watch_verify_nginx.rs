//! `reconfig watch --verify-url` in front of a real nginx (Debian's), with no `--validate-cmd`:
//! the only judge is whether nginx serves the verified location after its reload.
//!
//! nginx reads its config from the folder `--publish` keeps (`-c OUT/nginx.conf`). Each version
//! of the ConfigMap holds `nginx.conf` and the page its `/check` location serves from that same
//! published folder (`page-N.txt`, `alias OUT/page-N.txt`), as a config and the files it
//! serves go together. So a config nginx refuses at reload leaves nginx on the old config,
//! whose page left with the old version: `/check` fails, and the version is rolled back. A
//! config nginx accepts but that breaks `/check` fails the same way. `/` says which version
//! nginx runs.
//!
//! nginx runs as in `watch_nginx.rs`: the current user, foreground, its own prefix and port,
//! started through a symlink with a unique name so that `--process` finds only it.

#![cfg(feature = "kube")]

mod support;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::atomic_writer::{payload, AtomicWriter, Payload};
use support::http::{self, reserve_port};
use support::kube_api::FakeApi;
use support::reconfig::{self as rc, Reconfig};
use support::wait::{wait_for, TIMEOUT};

const NS: &str = rc::POD_NAMESPACE;
const POD: &str = rc::POD_NAME;

/// Version `n`: `/` answers `vN`, `/check` serves `page-N.txt` (`ok N`) from the published
/// folder, unless `check` replaces that location; `extra` goes into the server block.
fn version(
    prefix: &Path,
    out: &Path,
    addr: SocketAddr,
    n: u32,
    extra: &str,
    check: Option<&str>,
) -> Payload {
    let p = prefix.display();
    let user = if rustix::process::geteuid().is_root() {
        "user root root;\n"
    } else {
        ""
    };
    let check = check
        .map(str::to_string)
        .unwrap_or_else(|| format!("alias {}/page-{n}.txt;", out.display()));
    let conf = format!(
        "{user}daemon off;\nmaster_process on;\nworker_processes 1;\npid {p}/nginx.pid;\n\
         error_log {p}/logs/error.log notice;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  default_type text/plain;\n\
         \x20 client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n\
         \x20 fastcgi_temp_path {p}/tmp/fastcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n\
         \x20 scgi_temp_path {p}/tmp/scgi;\n\
         \x20 server {{\n    listen {addr};\n    {extra}\n\
         \x20   location = / {{ return 200 \"v{n}\"; }}\n\
         \x20   location = /check {{ {check} }}\n  }}\n}}\n"
    );
    let page = format!("ok {n}\n");
    payload(&[("nginx.conf", &conf), (&format!("page-{n}.txt"), &page)])
}

struct Nginx {
    child: Child,
    addr: SocketAddr,
    prefix: PathBuf,
}

impl Nginx {
    fn start(launcher: &Path, prefix: &Path, config: &Path, addr: SocketAddr) -> Nginx {
        let child = Command::new(launcher)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(config)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut ngx = Nginx {
            child,
            addr,
            prefix: prefix.to_path_buf(),
        };
        wait_for("nginx to serve v1", TIMEOUT, || {
            if let Ok(Some(status)) = ngx.child.try_wait() {
                panic!("nginx exited ({status}):\n{}", ngx.error_log());
            }
            match ngx.get("/") {
                Some(b) if b == "v1" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        ngx
    }

    fn get(&self, path: &str) -> Option<String> {
        http::get(self.addr, path)
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.body)
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.prefix.join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- nginx error log ----\n{}", self.error_log());
        }
    }
}

/// Waits until `/status` says `phase` with a message containing `says`, checking on every
/// look that nginx serves `serving` at `/` (when given) and that the pod is Ready.
fn wait_phase(
    r: &Reconfig,
    ngx: &Nginx,
    phase: &str,
    says: &str,
    serving: Option<&str>,
) -> serde_json::Value {
    wait_for(&format!("/status {phase} saying {says:?}"), TIMEOUT, || {
        if let Some(want) = serving {
            assert_eq!(
                ngx.get("/").as_deref(),
                Some(want),
                "nginx serves the last good content"
            );
        }
        assert_eq!(r.readyz().status, 200, "the pod stays Ready\n{}", r.log());
        let status = r.status();
        let message = status["message"].as_str().unwrap_or_default();
        if status["phase"] == phase && message.contains(says) {
            Ok(status)
        } else {
            Err(status.to_string())
        }
    })
}

fn events(api: &FakeApi, reason: &str) -> Vec<serde_json::Value> {
    api.events()
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

#[test]
fn nginx_configs_it_refuses_or_that_break_the_checked_location_are_rolled_back() {
    let Some(nginx) = support::bins::require("nginx", "nginx") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = tmp.path().join("prefix");
    for sub in ["logs", "tmp"] {
        fs::create_dir_all(prefix.join(sub)).expect("mkdir");
    }
    let name = format!("ngx{}v", std::process::id());
    let launcher = tmp.path().join(&name);
    std::os::unix::fs::symlink(&nginx, &launcher).expect("symlink");
    let out = tmp.path().join("out");
    let addr = reserve_port();
    let vol = AtomicWriter::new(tmp.path().join("config"));
    vol.write(&version(&prefix, &out, addr, 1, "", None))
        .expect("write");

    let api = FakeApi::start();
    api.add_pod(NS, POD, "uid-web-0");
    let check = format!("http://{addr}/check");
    let r = Reconfig::spawn(rc::api_command(
        &api.kubeconfig(tmp.path(), NS),
        Some("uid-web-0"),
        &[
            "--dir",
            vol.root().to_str().expect("utf-8"),
            "--publish",
            out.to_str().expect("utf-8"),
            "--signal",
            "SIGHUP",
            "--process",
            &name,
            "--verify-url",
            &check,
            "--verify-body",
            "^ok [0-9]+",
            "--verify-timeout",
            "3s",
            "--verify-interval",
            "50ms",
        ],
    ));
    // The pod starts: the sidecar publishes, then nginx reads the published config.
    wait_for("the first publication", TIMEOUT, || {
        out.join("nginx.conf")
            .exists()
            .then_some(())
            .ok_or_else(|| r.log())
    });
    let ngx = Nginx::start(&launcher, &prefix, &out.join("nginx.conf"), addr);
    let first = wait_phase(&r, &ngx, "applied", "", Some("v1"));
    let good = first["applied"].as_str().expect("hash").to_string();

    // A config nginx refuses at reload: nginx keeps v1 throughout, and v1's files come back.
    vol.write(&version(
        &prefix,
        &out,
        addr,
        2,
        "bogus_directive on;",
        None,
    ))
    .expect("write");
    let status = wait_phase(&r, &ngx, "rolled-back", "which runs now", Some("v1"));
    let refused = status["hash"].as_str().expect("hash").to_string();
    assert_eq!(status["applied"], good.as_str());
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("GET {check} answered 404")),
        "{message}"
    );
    assert!(
        ngx.error_log()
            .contains("unknown directive \"bogus_directive\""),
        "nginx refused it:\n{}",
        ngx.error_log()
    );
    assert_eq!(ngx.get("/check").as_deref(), Some("ok 1\n"));
    assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 1.0);

    // A config nginx accepts, but whose checked location fails: rolled back, v1 served again.
    vol.write(&version(&prefix, &out, addr, 3, "", Some("return 503;")))
        .expect("write");
    let status = wait_phase(&r, &ngx, "rolled-back", "answered 503", None);
    let broken = status["hash"].as_str().expect("hash").to_string();
    wait_phase(&r, &ngx, "rolled-back", "which runs now", None);
    wait_for("nginx to serve v1 again", TIMEOUT, || {
        match (ngx.get("/"), ngx.get("/check")) {
            (Some(a), Some(b)) if a == "v1" && b == "ok 1\n" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 2.0);
    let v1 = version(&prefix, &out, addr, 1, "", None);
    assert_eq!(
        fs::read(out.join("nginx.conf")).expect("published"),
        v1["nginx.conf"],
        "v1's config is published again"
    );

    // The Events and the pod's annotations say what happened.
    let rolled = wait_for("two ConfigRolledBack Events", TIMEOUT, || {
        let found = events(&api, "ConfigRolledBack");
        let named = |h: &str| {
            found
                .iter()
                .any(|e| e["note"].as_str().unwrap_or_default().contains(&h[..12]))
        };
        if named(&refused) && named(&broken) {
            Ok(found)
        } else {
            Err(format!("{:#?}", api.events()))
        }
    });
    for event in &rolled {
        assert_eq!(event["type"], "Warning");
        let note = event["note"].as_str().unwrap_or_default();
        assert!(
            note.ends_with(&format!(
                "rolled back to config {}, which runs now",
                &good[..12]
            )),
            "{note}"
        );
    }
    wait_for("the pod to show rolled-back on v1", TIMEOUT, || {
        let annotations = api.annotations(NS, POD);
        if annotations
            .get("reconfig/config-status")
            .map(String::as_str)
            == Some("rolled-back")
            && annotations.get("reconfig/config-hash") == Some(&good)
            && annotations
                .get("reconfig/config-message")
                .is_some_and(|m| m.contains(&broken[..12]))
        {
            Ok(())
        } else {
            Err(format!("{annotations:?}"))
        }
    });
    assert!(
        events(&api, "ConfigNotApplied").is_empty(),
        "{:#?}",
        api.events()
    );
}
