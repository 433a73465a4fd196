//! The project's contract page (`docs/CONTRACT.md`) says what the code does:
//! its schema tables equal `schemas/*.toml`, and the file-name rule it gives
//! senders is the one ingest applies.

use junkrecon::schema::Extract;

fn page() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CONTRACT.md")).unwrap()
}

/// The rows `| name | type | null |` of the table under `### <extract>`.
fn table(page: &str, extract: &str) -> Vec<(String, String, bool)> {
    let start = page
        .find(&format!("\n### {extract}\n"))
        .unwrap_or_else(|| panic!("no section for {extract}"));
    page[start..]
        .lines()
        .skip(2)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and rule
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (
                cells[0].to_string(),
                cells[1].to_string(),
                cells[2] == "yes",
            )
        })
        .collect()
}

#[test]
fn the_schema_tables_are_the_schema_files() {
    let page = page();
    for extract in Extract::ALL {
        let want: Vec<(String, String, bool)> = extract
            .contract()
            .columns
            .iter()
            .map(|c| {
                let ty = format!("{:?}", c.ty).to_lowercase();
                (c.name.clone(), ty, c.nullable)
            })
            .collect();
        assert_eq!(table(&page, extract.as_str()), want, "{extract}");
    }
    // §7: the columns version 2 adds to a subscriber extract.
    let v1 = Extract::Subscribers.contract();
    let added: Vec<(String, String, bool)> = Extract::Subscribers
        .contract_at(2)
        .unwrap()
        .columns
        .iter()
        .filter(|c| !v1.columns.iter().any(|o| o.name == c.name))
        .map(|c| {
            (
                c.name.clone(),
                format!("{:?}", c.ty).to_lowercase(),
                c.nullable,
            )
        })
        .collect();
    assert_eq!(table(&page, "subscribers, schema_version 2 (§7)"), added);
}

#[test]
fn the_file_name_rule_is_the_one_ingest_applies() {
    let rule = "1 to 255 characters from `A-Z a-z 0-9 . _ -`, not\n  starting with `.` or `-`";
    assert!(page().contains(rule), "docs/CONTRACT.md states the rule");
    assert_eq!(
        junkrecon::manifest::FILE_NAME_RULE,
        "1 to 255 characters from A-Z a-z 0-9 . _ -, not starting with . or -"
    );
}
