//! Binary upgrade as an operator does it: a new build installed over the
//! running one (`install`: unlink, then create), then `portico upgrade`,
//! under load; and an upgrade whose new binary cannot start, which must say
//! why at once and leave the old process serving.

use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A config whose old process drains quickly.
const SERVER: &str = "server:\n  listeners:\n    - address: 127.0.0.1:${PORT}\n  threads: 2\n  \
                      admin: 127.0.0.1:${ADMIN}\n  grace_period: 1s\n  graceful_shutdown_timeout: 2s\n  \
                      access_log: {path: off}\n  pid_file: ${DIR}/portico.pid\n  upgrade_sock: ${DIR}/upgrade.sock\n";

/// Writes an executable script to `path`.
fn script(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A "build" of Portico: the real binary, started under the name it was
/// installed as (so its next upgrade starts that path again), marked with
/// `PORTICO_TEST_BUILD` so the test can tell which file a process came from.
fn build(dir: &Path, mark: &str) -> PathBuf {
    let path = dir.join(format!("portico-{mark}"));
    script(
        &path,
        &format!(
            "#!/bin/bash\nexport PORTICO_TEST_BUILD={mark}\nexec -a \"$0\" {} \"$@\"\n",
            portico_bin()
        ),
    );
    path
}

/// `install -m0755 FROM TO`, as `make install` and package managers do.
fn install(from: &Path, to: &Path) {
    let out = std::process::Command::new("install")
        .arg("-m0755")
        .arg(from)
        .arg(to)
        .output()
        .expect("run install");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `portico upgrade -c CONF` with the given extra arguments.
fn upgrade(conf: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(portico_bin())
        .args(["upgrade", "-c"])
        .arg(conf)
        .args(extra)
        .output()
        .expect("run portico upgrade")
}

/// The new pid from `upgraded: pid NEW took over ...`.
fn new_pid(stdout: &str) -> i32 {
    stdout
        .split_whitespace()
        .nth(2)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {stdout:?}"))
}

/// Which build a process came from.
fn build_of(pid: i32) -> String {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("PORTICO_TEST_BUILD="))
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn upgrades_start_the_binary_installed_over_the_running_one() {
    let up = Upstream::start("a").await;
    let dir = temp_dir("install");
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).expect("bin dir");
    let installed = bin_dir.join("portico");
    install(&build(&dir, "1"), &installed);
    let gw = Gateway::start_from(&installed, &format!("{SERVER}{}", one_upstream(up.addr, "", ""))).await;
    assert_eq!(build_of(gw.pid() as i32), "1");

    let load = Load::start(gw.url("/load"), 2);
    for mark in ["2", "3", "4"] {
        install(&build(&dir, mark), &installed);
        let out = upgrade(&gw.config_path(), &["--timeout", "30s"]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            gw.log()
        );
        let pid = new_pid(&stdout);
        assert_eq!(build_of(pid), mark, "pid {pid} is not the build just installed");
        load.wait_for(100, "traffic on the new process").await;
    }
    let seen = load.stop().await;
    assert!(
        seen.failures.is_empty(),
        "failed requests: {:?}\n{}",
        seen.failures.iter().take(5).collect::<Vec<_>>(),
        gw.log()
    );

    // `--binary` starts the one named instead.
    let named = build(&dir, "5");
    let out = upgrade(
        &gw.config_path(),
        &["--timeout", "30s", "--binary", named.to_str().unwrap_or("")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(build_of(new_pid(&stdout)), "5");
}

#[tokio::test]
async fn a_failed_upgrade_says_why_and_the_old_process_keeps_serving() {
    let up = Upstream::start("a").await;
    let dir = temp_dir("broken");
    let installed = dir.join("portico");
    install(&build(&dir, "1"), &installed);
    let gw = Gateway::start_from(&installed, &format!("{SERVER}{}", one_upstream(up.addr, "", ""))).await;
    let old = gw.pid();

    // A build that cannot start: its config is not where it looks.
    let broken = dir.join("portico-broken");
    script(
        &broken,
        &format!(
            "#!/bin/bash\nexec -a \"$0\" {} run --upgrade -c {}/missing.yaml\n",
            portico_bin(),
            dir.display()
        ),
    );
    install(&broken, &installed);
    let out = upgrade(&gw.config_path(), &["--timeout", "120s"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("exit status: 1"), "no exit status: {stderr}");
    assert!(
        stderr.contains("missing.yaml"),
        "not the new process's own error: {stderr}"
    );
    assert!(!stderr.contains("within"), "waited for the timeout: {stderr}");

    assert_eq!(gw.pid(), old, "the pid file changed");
    let (status, _) = get_json(&client(), &gw.url("/still")).await;
    assert_eq!(status, 200, "the old process stopped serving");

    // A binary that is not there at all.
    let out = upgrade(
        &gw.config_path(),
        &["--timeout", "120s", "--binary", "/nonexistent/portico"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("/nonexistent/portico"), "{stderr}");
    let (status, _) = get_json(&client(), &gw.url("/still")).await;
    assert_eq!(status, 200);
}
