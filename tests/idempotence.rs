//! Re-running a date gives byte-identical reports and the same metrics; a
//! night run again with nothing changed keeps its publication.

use crate::common::Tree;

const D1: &str = "2026-11-20";
const D2: &str = "2026-11-21";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_is_byte_identical() {
    let t = Tree::sample();
    t.run("2026-11-20").await.unwrap();
    t.run("2026-11-21").await.unwrap();
    let published = |t: &Tree| {
        let mut h = t.hashes("reports");
        h.extend(
            t.hashes("metrics")
                .into_iter()
                .filter(|(k, _)| !k.ends_with("_PUBLISHED.json")),
        );
        h
    };
    let first = published(&t);
    assert!(first.len() > 30);
    // Re-run the later night, then the earlier one: nothing changes.
    t.run("2026-11-21").await.unwrap();
    t.run("2026-11-20").await.unwrap();
    assert_eq!(published(&t), first);
    // No run leaves folders behind: neither its work folder nor the staged
    // publications it replaced.
    let entries = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(t.path().join(dir))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(entries("work"), Vec::<String>::new());
    for date in ["2026-11-20", "2026-11-21"] {
        let staged = entries(&format!("publications/date={date}"));
        assert_eq!(staged.len(), 2, "{staged:?}");
        assert_eq!(staged[0], "CURRENT.json");
        assert!(staged[1].starts_with("run="), "{staged:?}");
    }
    // The commit marker lists every file with the sha256 of what is on disk.
    let marker: junkrecon::publish::Published = serde_json::from_slice(
        &std::fs::read(t.path().join("metrics/date=2026-11-21/_PUBLISHED.json")).unwrap(),
    )
    .unwrap();
    for f in &marker.files {
        assert_eq!(first[&f.path], f.sha256, "{}", f.path);
    }
    assert_eq!(
        marker.files.len(),
        first.keys().filter(|k| k.contains("2026-11-21")).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_ingests_nothing_again() {
    let t = Tree::sample();
    let first = t.run("2026-11-20").await.unwrap();
    assert_eq!(first.ingest.decided.len(), 19);
    let again = t.run("2026-11-21").await.unwrap();
    assert!(again.ingest.decided.is_empty());
    assert_eq!(again.ingest.already_decided, 19);
    assert_eq!(
        again.ingest.in_progress,
        vec!["landing/subscribers/carrier=VIETNAMOBILE/date=2026-11-21/".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_night_publishes_a_self_contained_dashboard() {
    let t = Tree::sample();
    t.run("2026-11-20").await.unwrap();
    t.run("2026-11-21").await.unwrap();
    let page = std::fs::read_to_string(t.path().join("reports/dashboard.html")).unwrap();
    assert_eq!(
        page,
        std::fs::read_to_string(
            t.path()
                .join("reports/dashboard/date=2026-11-21/dashboard.html")
        )
        .unwrap()
    );
    // Nothing is fetched from outside the file.
    for outside in ["http://", "https://", "<script src", "@import", "url("] {
        assert!(
            !page.contains(outside),
            "dashboard refers outside itself: {outside}"
        );
    }
    // The only <link> is the inline (data:) icon that stops browsers asking for /favicon.ico.
    assert_eq!(
        page.matches("<link").count(),
        page.matches("<link rel=\"icon\" href=\"data:,\">").count()
    );
    assert!(page.contains("Nhà mạng / Carriers") && page.contains("Ngân hàng / Banks"));
    // Every source with its published percentages, and one line per source per chart.
    for (file, n) in [("carriers", 5), ("banks", 4)] {
        let m = t.metrics(file, "2026-11-21");
        assert_eq!(m.len(), n);
        for (source, v) in &m {
            let clean = format!("{:.2}", v["clean_pct"].as_f64().unwrap());
            let progress = format!("{:.2}", v["cleanup_progress_pct"].as_f64().unwrap());
            let row = format!("data-source=\"{source}\"><td>{source}</td>");
            let at = page
                .find(&row)
                .unwrap_or_else(|| panic!("no row for {source}"));
            let rest = &page[at..at + page[at..].find("</tr>").unwrap()];
            let extract = format!("<td>{}</td>", v["extract_as_of"].as_str().unwrap());
            assert!(rest.contains(&extract), "{source}: {rest}");
            assert!(
                rest.contains(&format!("<td class=\"clean-pct\">{clean}</td>")),
                "{source}: {rest}"
            );
            assert!(
                rest.contains(&format!("<td class=\"progress-pct\">{progress}</td>")),
                "{source}: {rest}"
            );
            assert_eq!(
                page.matches(&format!("class=\"series\" data-source=\"{source}\""))
                    .count(),
                3,
                "{source}: clean %, progress %, overdue"
            );
        }
    }
    // The stale GMOBILE extract (day 1 used on day 2) is highlighted.
    assert!(page.contains("<tr class=\"stale\" data-source=\"GMOBILE\">"));
    // A re-run of the older night does not replace the newest night's page.
    t.run("2026-11-20").await.unwrap();
    assert_eq!(
        std::fs::read_to_string(t.path().join("reports/dashboard.html")).unwrap(),
        page
    );
}

fn published(t: &Tree) -> std::collections::BTreeMap<String, String> {
    let mut h = t.hashes("reports");
    h.extend(t.hashes("metrics"));
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_run_again_with_nothing_changed_keeps_its_publication() {
    let t = Tree::sample();
    t.run(D1).await.unwrap();
    let first = t.run(D2).await.unwrap();
    assert_eq!(first.kept_publication_of, None);
    let before = published(&t);
    let summary = serde_json::to_value(&first.summary).unwrap();

    // Nothing changed: the publication stands, marker and all, and the
    // record carries the same figures without a reconcile or publish stage.
    let again = t.run(D2).await.unwrap();
    assert_eq!(
        again.kept_publication_of.as_deref(),
        Some(first.run_id.as_str())
    );
    assert_eq!(published(&t), before);
    assert_eq!(serde_json::to_value(&again.summary).unwrap(), summary);
    assert_eq!(again.published_files, first.published_files);
    let stages: Vec<&str> = again.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(stages, ["ingest", "keep"]);
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            t.path()
                .join(format!("runs/date={D2}/{}.json", again.run_id)),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(saved["kept_publication_of"], first.run_id.as_str());
    // The earlier night too: nothing before it changed.
    assert!(t.run(D1).await.unwrap().kept_publication_of.is_some());

    // A damaged file is not kept: the night is computed again and whole.
    let csv = t.path().join(format!(
        "reports/subscribers/carrier=VIETTEL/date={D2}/flags.csv"
    ));
    std::fs::write(&csv, "damaged").unwrap();
    let repaired = t.run(D2).await.unwrap();
    assert_eq!(repaired.kept_publication_of, None);
    let after = published(&t);
    assert_eq!(strip_markers(&after), strip_markers(&before));

    // A changed setting computes the night again, and so does going back.
    let cfg = junkrecon::config::Config {
        max_subscriptions_per_person: 1,
        ..Default::default()
    };
    assert_eq!(
        t.run_with(D2, &cfg).await.unwrap().kept_publication_of,
        None
    );
    assert_ne!(strip_markers(&published(&t)), strip_markers(&before));
    assert_eq!(t.run(D2).await.unwrap().kept_publication_of, None);
    assert_eq!(strip_markers(&published(&t)), strip_markers(&before));

    // So does another engine setting (a re-run under a new pool is how an
    // operator tries it), with the same outputs.
    let pooled = junkrecon::config::Config {
        memory_limit_mb: 512,
        ..Default::default()
    };
    assert_eq!(
        t.run_with(D2, &pooled).await.unwrap().kept_publication_of,
        None
    );
    assert!(t
        .run_with(D2, &pooled)
        .await
        .unwrap()
        .kept_publication_of
        .is_some());
    assert_eq!(strip_markers(&published(&t)), strip_markers(&before));
    assert_eq!(t.run(D2).await.unwrap().kept_publication_of, None);

    // `--recompute` computes it whatever stands.
    assert!(t.run(D2).await.unwrap().kept_publication_of.is_some());
    assert_eq!(
        t.recompute(D2, &Default::default())
            .await
            .unwrap()
            .kept_publication_of,
        None
    );

    // An earlier night published again (another run) makes the later one
    // computed again: its progress and clock read the earlier publication.
    t.recompute(D1, &Default::default()).await.unwrap();
    assert_eq!(t.run(D2).await.unwrap().kept_publication_of, None);

    // A new upload decided for the night (here rejected: its checksum is
    // wrong) changes sources.json: computed again.
    t.upload(
        "subscribers",
        "NEWNET",
        D2,
        &[("part-0.parquet", crate::common::subscribers(&[]))],
    );
    let mut m = t.manifest("subscribers", "NEWNET", D2);
    m["files"][0]["sha256"] = serde_json::json!("0".repeat(64));
    t.set_manifest("subscribers", "NEWNET", D2, &m);
    let sources_before = t.hashes("metrics")[&format!("metrics/date={D2}/sources.json")].clone();
    assert_eq!(t.run(D2).await.unwrap().kept_publication_of, None);
    assert_ne!(
        t.hashes("metrics")[&format!("metrics/date={D2}/sources.json")],
        sources_before
    );
}

/// Published files without the markers (which name the run that published).
fn strip_markers(
    h: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    h.iter()
        .filter(|(k, _)| !k.ends_with("_PUBLISHED.json"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
