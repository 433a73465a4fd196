//! What `ops/` ships is checked by the tools that will read it: the alert
//! rules by `promtool check rules` and their unit tests by `promtool test
//! rules`, and the service's `/metrics` by `promtool check metrics`. Skipped
//! without promtool unless `JUNKRECON_REQUIRE_PROMTOOL=1` (CI installs it).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::Tree;
use crate::serve::{config, Service};

fn promtool() -> Option<&'static str> {
    if Command::new("promtool").arg("--version").output().is_ok() {
        return Some("promtool");
    }
    if std::env::var("JUNKRECON_REQUIRE_PROMTOOL").as_deref() == Ok("1") {
        panic!("promtool required (Debian package prometheus) but missing");
    }
    eprintln!("skipping: promtool (Debian package prometheus) is not installed");
    None
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}:\n{text}");
    text
}

#[test]
fn alert_rules_load_and_fire_on_their_test_series() {
    let Some(p) = promtool() else { return };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/prometheus");
    let out = run(Command::new(p)
        .args(["check", "rules", "alerts.yml"])
        .current_dir(&dir));
    assert!(out.contains("SUCCESS: 9 rules found"), "{out}");
    run(Command::new(p)
        .args(["test", "rules", "alerts_test.yml"])
        .current_dir(&dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_lint() {
    let Some(p) = promtool() else { return };
    let t = Tree::sample();
    t.run("2026-11-20").await.unwrap();
    let never = "0 0 0 1 1 * 2099";
    let svc = Service::start(t.root(), config(never, never)).await;
    let (code, text) = svc.get("/metrics").await;
    svc.stop().await;
    assert_eq!(code, 200);
    assert!(text.contains("junkrecon_clean_pct{kind=\"carrier\",source=\"VIETTEL\"}"));
    let mut child = Command::new(p)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The one accepted lint: the issue asks for the extract's age in days
    // (a whole count of calendar days, D minus as_of), not a duration in seconds.
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with("junkrecon_extract_age_days use base unit"))
        .collect();
    assert!(problems.is_empty(), "promtool check metrics:\n{text}");
}
