//! The dashboard in a real headless browser (Debian's chromium driven by
//! playwright-core, both installed by `.ci/run`): it loads with no console
//! error or failed request, shows every carrier and bank with its published
//! percentages, draws the charts, fits a phone's width, and leaves screenshots
//! in `target/tmp/`. Skipped when chromium or node is missing, unless
//! `JUNKRECON_REQUIRE_BROWSER=1` (CI) makes it mandatory.

use std::path::{Path, PathBuf};

use junkrecon::config::Config;

use crate::common::Tree;
use crate::serve::{config, Service};

fn browser_kit() -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into()));
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let ok = node_ok && chromium.exists() && dir.join("node_modules/playwright-core").exists();
    if ok {
        return Some((dir, chromium));
    }
    let need =
        "node, /usr/bin/chromium and tests/browser/node_modules (npm ci --prefix tests/browser)";
    if std::env::var("JUNKRECON_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!("browser test required but {need} missing");
    }
    eprintln!("skipping the browser test: needs {need}");
    None
}

fn pct(v: &serde_json::Value) -> String {
    v.as_f64()
        .map(|p| format!("{p:.2}"))
        .unwrap_or_else(|| "–".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_in_headless_chromium() {
    let Some((dir, chromium)) = browser_kit() else {
        return;
    };
    let t = Tree::sample();
    // Short enforcement settings, so that night 2 has actions due, overdue
    // records and a compliance percentage to show.
    let mut cfg = Config {
        expected_carriers: vec!["VIETTEL".into(), "REDDI".into()],
        ..Config::default()
    };
    cfg.enforcement.lock_one_way_after_days = 1;
    cfg.enforcement.lock_two_way_after_days = 2;
    cfg.enforcement.terminate_after_days = 3;
    cfg.enforcement.suspend_after_days = 1;
    t.run_with("2026-11-20", &cfg).await.unwrap();
    t.run_with("2026-11-21", &cfg).await.unwrap();
    let mut expected = vec![];
    for file in ["carriers", "banks"] {
        for (source, m) in t.metrics(file, "2026-11-21") {
            expected.push(serde_json::json!({
                "source": source,
                "clean_pct": pct(&m["clean_pct"]),
                "progress_pct": pct(&m["cleanup_progress_pct"]),
                "compliance_pct": pct(&m["compliance_pct"]),
                "overdue": m["overdue"].to_string(),
            }));
        }
    }
    assert!(expected.len() >= 9);
    expected.push(serde_json::json!({"source": "REDDI", "clean_pct": null}));
    let expected_path = t.path().join("expected.json");
    std::fs::write(&expected_path, serde_json::to_vec(&expected).unwrap()).unwrap();

    let svc = Service::start(t.root(), config("0 0 0 1 1 * 2099", "0 0 0 1 1 * 2099")).await;
    let (code, page) = svc.get("/").await;
    assert_eq!(code, 200);
    assert!(page.contains("Rejected uploads"), "rejected uploads listed");
    assert!(
        expected.iter().any(|e| e["compliance_pct"] != "–"),
        "some action is due on night 2"
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let url = format!("http://{}/", svc.addr);
    let mut node = std::process::Command::new("node");
    node.arg(dir.join("dashboard.mjs"))
        .args([
            url.as_str(),
            expected_path.to_str().unwrap(),
            shots.to_str().unwrap(),
        ])
        .env("CHROMIUM", chromium);
    let out = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .unwrap();
    svc.stop().await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser checks failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("\"ok\":true"), "{report}");
    for name in ["laptop", "phone"] {
        let shot = shots.join(format!("dashboard-{name}.png"));
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "{shot:?}");
        eprintln!("screenshot: {}", shot.display());
    }
}
