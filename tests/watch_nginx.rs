//! `reconfig watch` in front of a real nginx (Debian's 1.22) whose `nginx.conf` lives in a
//! kubelet-style volume: validated with `nginx -t`, then SIGHUP to the master found with
//! `--process`.
//!
//! What counts is what nginx reports: the body it serves (set by the config), and its own error
//! log at `notice` level, where every signal it receives is logged with the receiving PID and
//! the sender (`signal 1 (SIGHUP) received from <pid>, reconfiguring`).
//!
//! nginx runs directly, as the current user, in the foreground (`daemon off`), with its own
//! prefix, pid file, error log, temp folders and a free loopback port. Its master's process name
//! (comm) is made unique by starting it through a symlink named `ngx<test pid><n>`, so
//! `--process` matches only this test's nginx: a packaged nginx service, or another test's
//! nginx, is called `nginx` and is never signalled. (`--process` compares comm, cut to 15
//! characters, and the file name of argv[0]; nginx's master rewrites its argv to
//! `nginx: master process …`, so comm is what matches. Workers inherit the master's comm and
//! are children of a match, so only the master, the root of the tree, is signalled.)

mod support;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::atomic_writer::{payload, AtomicWriter, Payload};
use support::http::{self, reserve_port};
use support::reconfig::Reconfig;
use support::wait::{wait_for, TIMEOUT};

fn conf(prefix: &Path, addr: SocketAddr, body: &str, extra: &str) -> Payload {
    let p = prefix.display();
    let user = if rustix::process::geteuid().is_root() {
        // Workers would otherwise switch to the build's default user; stay who we are.
        "user root root;\n"
    } else {
        ""
    };
    let text = format!(
        "{user}daemon off;\nmaster_process on;\nworker_processes 2;\npid {p}/nginx.pid;\n\
         error_log {p}/logs/error.log notice;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  default_type text/plain;\n\
         \x20 client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n\
         \x20 fastcgi_temp_path {p}/tmp/fastcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n\
         \x20 scgi_temp_path {p}/tmp/scgi;\n\
         \x20 server {{\n    listen {addr};\n    {extra}\n    location / {{ return 200 \"{body}\"; }}\n  }}\n}}\n"
    );
    payload(&[("nginx.conf", &text)])
}

struct Nginx {
    child: Child,
    addr: SocketAddr,
    prefix: PathBuf,
    /// The unique process name (comm) of its master and workers.
    name: String,
}

impl Nginx {
    /// Starts nginx through `launcher` on a free port with a v1 config in `vol`, and waits until
    /// it serves; a port taken meanwhile by someone else means another try.
    fn start(launcher: &Path, name: &str, prefix: &Path, vol: &AtomicWriter) -> Nginx {
        for _ in 0..3 {
            let addr = reserve_port();
            vol.write(&conf(prefix, addr, "v1", "")).expect("write");
            let _ = fs::remove_file(prefix.join("logs/error.log"));
            let child = Command::new(launcher)
                .arg("-p")
                .arg(prefix)
                .arg("-c")
                .arg(vol.root().join("nginx.conf"))
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
                name: name.to_string(),
            };
            let started = wait_for("nginx to serve v1 or exit", TIMEOUT, || {
                if let Ok(Some(status)) = ngx.child.try_wait() {
                    return Ok(Err(status));
                }
                match ngx.body() {
                    Some(b) if b == "v1" => Ok(Ok(())),
                    other => Err(format!("{other:?}\n{}", ngx.error_log())),
                }
            });
            match started {
                Ok(()) => return ngx,
                Err(_) if ngx.error_log().contains("Address already in use") => continue,
                Err(status) => panic!("nginx exited ({status}):\n{}", ngx.error_log()),
            }
        }
        panic!("nginx could not get a free port in 3 attempts");
    }

    fn body(&self) -> Option<String> {
        http::get(self.addr, "/")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.body)
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.prefix.join("logs/error.log")).unwrap_or_default()
    }

    /// Lines of the error log about SIGHUP: who received it and from whom.
    fn sighups(&self) -> Vec<String> {
        self.error_log()
            .lines()
            .filter(|l| l.contains("signal 1 (SIGHUP) received"))
            .map(str::to_string)
            .collect()
    }

    /// Waits until a reload is complete: the workers of `before` have exited, two new ones run,
    /// and they serve `want`. Returns the new workers. (Until the old workers have closed their
    /// listening sockets, a request can still reach one of them and get the old body.)
    fn wait_generation(&self, before: &[u32], want: &str, r: &Reconfig) -> Vec<u32> {
        wait_for(
            &format!("nginx's new workers to serve {want:?}"),
            TIMEOUT,
            || {
                let now = children_named(self.child.id(), &self.name);
                let body = self.body();
                if now.len() == 2
                    && now.iter().all(|w| !before.contains(w))
                    && before
                        .iter()
                        .all(|w| !Path::new(&format!("/proc/{w}")).exists())
                    && body.as_deref() == Some(want)
                {
                    Ok(now)
                } else {
                    Err(format!(
                    "workers {now:?} (before {before:?}), body {body:?}\nnginx error log:\n{}\nreconfig log:\n{}",
                    self.error_log(),
                    r.log()
                ))
                }
            },
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers, then exits; SIGKILL only if it hangs.
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

/// Children of `pid` whose comm is `name` (nginx workers), from /proc.
fn children_named(pid: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if comm == name && ppid == Some(pid.to_string().as_str()) {
            found.push(child);
        }
    }
    found
}

#[test]
fn nginx_master_is_signalled_for_good_configs_and_never_for_rejected_ones() {
    let Some(nginx) = support::bins::require("nginx", "nginx") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = tmp.path().join("prefix");
    for sub in ["logs", "tmp"] {
        fs::create_dir_all(prefix.join(sub)).expect("mkdir");
    }
    // A unique process name, so that --process finds this nginx and no other.
    let name = format!("ngx{}a", std::process::id());
    assert!(name.len() <= 15, "comm keeps 15 characters: {name}");
    let launcher = tmp.path().join(&name);
    std::os::unix::fs::symlink(&nginx, &launcher).expect("symlink");

    let vol = AtomicWriter::new(tmp.path().join("config"));
    let ngx = Nginx::start(&launcher, &name, &prefix, &vol);
    let (addr, master) = (ngx.addr, ngx.child.id());
    let workers = wait_for("two nginx workers", TIMEOUT, || {
        let w = children_named(master, &name);
        if w.len() == 2 {
            Ok(w)
        } else {
            Err(format!("{w:?}"))
        }
    });

    let validate = format!(
        "{} -t -q -p {} -c {{dir}}/nginx.conf -e {}",
        nginx.display(),
        prefix.display(),
        prefix.join("logs/validate.log").display()
    );
    let vol_dir = vol.root().display().to_string();
    let r = Reconfig::start(&[
        "--dir",
        &vol_dir,
        "--validate-cmd",
        &validate,
        "--signal",
        "SIGHUP",
        "--process",
        &name,
    ]);
    r.wait_ready(200);

    // A good config: the master is signalled, reloads, and its new workers serve it.
    vol.write(&conf(&prefix, addr, "v2", "")).expect("write");
    let second = ngx.wait_generation(&workers, "v2", &r);
    let sent = r.wait_log("reloaded:", 1);
    assert!(
        sent.contains(&format!(": SIGHUP sent to {master} ({name})")),
        "only the master is signalled: {sent}"
    );
    let hups = ngx.sighups();
    assert_eq!(hups.len(), 1, "{hups:?}");
    assert!(
        hups[0].contains(&format!(" {master}#{master}: "))
            && hups[0].contains(&format!("received from {}, reconfiguring", r.pid())),
        "the master got it from reconfig: {}",
        hups[0]
    );
    for worker in &workers {
        assert!(
            !ngx.error_log()
                .contains(&format!(" {worker}#{worker}: signal 1 (SIGHUP)")),
            "worker {worker} was signalled directly"
        );
    }

    // A config `nginx -t` rejects: never signalled, the old body stays.
    vol.write(&conf(&prefix, addr, "v3", "bogus_directive on;"))
        .expect("write");
    r.wait_metric("reconfig_validation_failures_total", &[], 1.0);
    r.wait_log("config rejected", 1);
    assert!(
        r.log().contains("unknown directive \"bogus_directive\""),
        "nginx -t's reason is logged:\n{}",
        r.log()
    );
    assert_eq!(r.status()["phase"], "rejected");
    assert_eq!(r.readyz().status, 200, "nginx still serves v2");
    assert_eq!(ngx.body().as_deref(), Some("v2"));
    assert_eq!(
        ngx.sighups().len(),
        1,
        "no reload attempt: {:?}",
        ngx.sighups()
    );
    assert_eq!(
        ngx.error_log().matches("reconfiguring").count(),
        2,
        "{}",
        ngx.error_log()
    );
    assert_eq!(r.reloads("signal", "success"), 1);
    assert_eq!(r.reloads("signal", "failure"), 0);

    // The next good config is served.
    vol.write(&conf(&prefix, addr, "v4", "")).expect("write");
    ngx.wait_generation(&second, "v4", &r);
    r.wait_reloaded(2);
    let hups = ngx.sighups();
    assert_eq!(hups.len(), 2, "{hups:?}");
    assert!(hups
        .iter()
        .all(|h| h.contains(&format!(" {master}#{master}: "))));
    assert_eq!(r.reloads("signal", "success"), 2);
    r.wait_ready(200);
    assert!(
        !ngx.error_log().contains("[emerg]"),
        "nginx never loaded a bad config:\n{}",
        ngx.error_log()
    );
}
