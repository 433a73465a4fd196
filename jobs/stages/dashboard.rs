//! The officials' dashboard as one self-contained HTML file, published with
//! every night as `reports/dashboard.html`: no script, font or style from
//! outside the file (it is read on closed government networks), charts as
//! inline SVG. Built only from published metrics (never from row data), and
//! only from nights up to the one being published, so a re-run is identical.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::metrics::SourceMetrics;
use crate::night::NightDate;
use crate::schema::Extract;
use crate::sources::SourceStatus;

/// One published night's metrics.
pub struct Night<'a> {
    /// The date.
    pub date: NightDate,
    /// carriers.json entries.
    pub carriers: &'a [SourceMetrics],
    /// banks.json entries.
    pub banks: &'a [SourceMetrics],
    /// sources.json entries (needed for the night being published only).
    pub sources: &'a [SourceStatus],
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:1rem;color:#1b1f24}\
h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:2rem}table{border-collapse:collapse;width:100%;max-width:60rem}\
th,td{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}\
.stale{background:#fff3cd}.missing{background:#f8d7da}.down{color:#b00020}.up{color:#0a7d32}.charts{display:flex;flex-wrap:wrap;gap:1rem}figure{flex:1 1 24rem;margin:0;max-width:36rem}\
svg{width:100%;height:auto;border:1px solid #eee}.today td{white-space:nowrap}.rejected th,.rejected td{text-align:left}.scroll{overflow-x:auto}small{color:#555}\
.enforcement td{white-space:nowrap}.behind td.overdue{color:#b00020;font-weight:600}.split{width:9rem}.split svg{border:0;display:block;width:120px;height:12px}.legend span{display:inline-block;margin-right:.8rem}.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.2rem;vertical-align:middle}";

/// Colors of the enforcement actions (§9), in timeline order per extract.
const ACTION_COLORS: [&str; 4] = ["#9ecae1", "#fdae6b", "#e6550d", "#a50f15"];

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];

/// Renders the dashboard for the last night of `nights` (ascending dates).
pub fn render(nights: &[Night]) -> String {
    let today = nights.last().expect("at least the night being published");
    let previous = nights.len().checked_sub(2).map(|i| &nights[i]);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><link rel=\"icon\" href=\"data:,\">\
         <title>junkrecon {d}</title><style>{STYLE}</style></head><body>\
         <h1>Tiến độ làm sạch SIM rác và tài khoản / Junk SIM and account cleanup — {d}</h1>\
         <p><small>Nguồn: số liệu đã công bố (metrics/date=…/carriers.json, banks.json). \
         Source: published metrics. Ô vàng: dữ liệu cũ, dòng hoặc lần tải lên bị loại / yellow: stale extract, rejected rows or uploads. \
         Ô đỏ: thiếu dữ liệu đêm nay / red: no accepted upload for this night.</small></p>",
        d = today.date
    );
    let registry: Vec<&SourceStatus> = today
        .sources
        .iter()
        .filter(|s| s.kind == "registry")
        .collect();
    held_uploads(&mut h, &registry);
    let kinds: [(&str, &str, &str, Extract, Pick); 2] = [
        (
            "Nhà mạng",
            "Carriers",
            "carrier",
            Extract::Subscribers,
            carriers_of,
        ),
        ("Ngân hàng", "Banks", "bank", Extract::Accounts, banks_of),
    ];
    for (kind_vi, kind_en, kind, extract, pick) in kinds {
        let now = pick(today);
        let before = previous.map(pick).unwrap_or(&[]);
        let statuses: Vec<&SourceStatus> =
            today.sources.iter().filter(|s| s.kind == kind).collect();
        let _ = write!(h, "<h2>{kind_vi} / {kind_en}</h2>");
        today_table(&mut h, now, before, &statuses, today.date);
        rejected_uploads(&mut h, &statuses);
        held_uploads(&mut h, &statuses);
        enforcement_table(&mut h, extract, nights, pick);
        let _ = write!(h, "<div class=\"charts\">");
        chart(
            &mut h,
            "Tỷ lệ sạch % / Clean %",
            nights,
            pick,
            Some(100.0),
            |m| m.clean_pct,
        );
        chart(
            &mut h,
            "Tiến độ làm sạch % / Cleanup progress %",
            nights,
            pick,
            Some(100.0),
            |m| m.cleanup_progress_pct,
        );
        chart(
            &mut h,
            "Bản ghi quá hạn xử lý / Overdue records",
            nights,
            pick,
            None,
            |m| Some(m.overdue as f64),
        );
        let _ = write!(h, "</div>");
        reasons_table(&mut h, now);
    }
    h.push_str("</body></html>\n");
    h
}

/// Picks one kind of source out of a night.
type Pick = for<'a> fn(&Night<'a>) -> &'a [SourceMetrics];

fn carriers_of<'a>(n: &Night<'a>) -> &'a [SourceMetrics] {
    n.carriers
}

fn banks_of<'a>(n: &Night<'a>) -> &'a [SourceMetrics] {
    n.banks
}

fn fmt_pct(p: Option<f64>) -> String {
    p.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into())
}

/// Escapes text for HTML (source codes and rejection reasons come from senders).
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn status_label(status: Option<&SourceStatus>) -> &'static str {
    use crate::sources::SourceState;
    match status.map(|s| s.status) {
        Some(SourceState::Missing) => "thiếu / missing",
        Some(SourceState::Stale) => "cũ / stale",
        Some(SourceState::Current) | None => "đủ / current",
    }
}

fn today_table(
    h: &mut String,
    now: &[SourceMetrics],
    before: &[SourceMetrics],
    statuses: &[&SourceStatus],
    date: NightDate,
) {
    let _ = write!(
        h,
        "<div class=\"scroll\"><table class=\"today\"><thead><tr><th>Nguồn / Source</th><th>Sạch % / Clean %</th><th>± hôm trước / vs previous</th>\
         <th>Tiến độ % / Progress %</th><th>Tải lên / Upload</th><th>Ngày dữ liệu / Extract</th>\
         <th>Tổng / Total</th><th>Bị gắn cờ / Flagged</th><th>Mới / New</th><th>Đã xử lý / Resolved</th><th>Dòng bị loại / Rows rejected</th></tr></thead><tbody>"
    );
    for m in now {
        let status = statuses.iter().copied().find(|s| s.source == m.source);
        let prev = before
            .iter()
            .find(|p| p.source == m.source)
            .and_then(|p| p.clean_pct);
        let delta = match (m.clean_pct, prev) {
            (Some(a), Some(b)) => {
                let d = a - b;
                let class = if d < 0.0 { "down" } else { "up" };
                format!("<span class=\"{class}\">{d:+.2}</span>")
            }
            _ => "–".into(),
        };
        let missing = status.is_some_and(|s| s.status == crate::sources::SourceState::Missing);
        let stale = m.extract_as_of < date
            || m.rows_rejected > 0
            || status.is_some_and(|s| !s.rejected_uploads.is_empty());
        let cls = match (missing, stale) {
            (true, _) => " class=\"missing\"",
            (false, true) => " class=\"stale\"",
            _ => "",
        };
        let _ = write!(
            h,
            "<tr{cls} data-source=\"{s}\"><td>{s}</td><td class=\"clean-pct\">{c}</td><td>{delta}</td><td class=\"progress-pct\">{p}</td>\
             <td>{u}</td><td>{e}</td><td>{t}</td><td>{f}</td><td>{n}</td><td>{r}</td><td>{rr}</td></tr>",
            s = esc(&m.source),
            u = status_label(status),
            e = m.extract_as_of,
            t = m.total,
            f = m.flagged,
            c = fmt_pct(m.clean_pct),
            p = fmt_pct(m.cleanup_progress_pct),
            n = m.newly_flagged,
            r = m.resolved,
            rr = m.rows_rejected,
        );
    }
    for s in statuses
        .iter()
        .filter(|s| !now.iter().any(|m| m.source == s.source))
    {
        let _ = write!(
            h,
            "<tr class=\"missing\" data-source=\"{src}\"><td>{src}</td><td>–</td><td>–</td><td>–</td><td>{u}</td><td colspan=\"6\">chưa có dữ liệu được chấp nhận / no accepted extract</td></tr>",
            src = esc(&s.source),
            u = status_label(Some(s)),
        );
    }
    h.push_str("</tbody></table></div>");
}

fn rejected_uploads(h: &mut String, statuses: &[&SourceStatus]) {
    let rejected: Vec<(&SourceStatus, &crate::sources::RejectedUpload)> = statuses
        .iter()
        .flat_map(|s| s.rejected_uploads.iter().map(move |r| (*s, r)))
        .collect();
    if rejected.is_empty() {
        return;
    }
    h.push_str(
        "<h3>Lần tải lên bị từ chối / Rejected uploads</h3><div class=\"scroll\"><table class=\"rejected\">\
         <thead><tr><th>Nguồn / Source</th><th>Ngày / Date</th><th>Lý do / Reason</th></tr></thead><tbody>",
    );
    for (s, r) in rejected {
        let _ = write!(
            h,
            "<tr class=\"stale\" data-source=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.source),
            esc(&s.source),
            esc(&r.as_of.text()),
            esc(&r.reason)
        );
    }
    h.push_str("</tbody></table></div>");
}

fn held_uploads(h: &mut String, statuses: &[&SourceStatus]) {
    let held: Vec<(&SourceStatus, &crate::sources::HeldUpload)> = statuses
        .iter()
        .flat_map(|s| s.held_uploads.iter().map(move |u| (*s, u)))
        .collect();
    if held.is_empty() {
        return;
    }
    h.push_str(
        "<h3>Lần tải lên bị giữ lại / Held uploads</h3>\
         <p><small>Không được dùng cho đến khi được phát hành; dữ liệu trước vẫn được dùng. \
         Not used until an operator releases it; the previous extract stays in use \
         (junkrecon release --data ROOT …).</small></p>\
         <div class=\"scroll\"><table class=\"rejected held\">\
         <thead><tr><th>Nguồn / Source</th><th>Ngày / Date</th><th>Giữ từ / Held since</th><th>Lý do / Reason</th><th>Phát hành / Release</th></tr></thead><tbody>",
    );
    for (s, u) in held {
        let _ = write!(
            h,
            "<tr class=\"stale\" data-source=\"{src}\"><td>{src}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&u.as_of.text()),
            esc(&u.decided_at),
            esc(&u.reason),
            esc(&u.release),
            src = esc(&s.source),
        );
    }
    h.push_str("</tbody></table></div>");
}

/// The enforcement timeline (§9) per source: how the flagged records split
/// across the required actions, how many are overdue, compliance, and since
/// which night the source has been behind without a break.
fn enforcement_table(h: &mut String, extract: Extract, nights: &[Night], pick: Pick) {
    let Some(today) = nights.last() else {
        return;
    };
    let actions = crate::reasons::actions(extract);
    let _ = write!(
        h,
        "<h3>Tiến độ xử lý theo lộ trình / Enforcement timeline</h3><p class=\"legend\"><small>"
    );
    for (a, color) in actions.iter().zip(ACTION_COLORS) {
        let _ = write!(h, "<span><i style=\"background:{color}\"></i>{a}</span>");
    }
    let _ = write!(
        h,
        "</small></p><div class=\"scroll\"><table class=\"enforcement\"><thead><tr><th>Nguồn / Source</th>\
         <th>Quá hạn / Overdue</th><th>Tuân thủ % / Compliance %</th><th>Quá hạn từ / Behind since</th>\
         <th>Bị gắn cờ / Flagged</th><th class=\"split\">Hành động / Required action</th>"
    );
    for a in actions {
        let _ = write!(h, "<th>{a}</th>");
    }
    h.push_str("</tr></thead><tbody>");
    for m in pick(today) {
        let counts: Vec<u64> = actions
            .iter()
            .map(|a| m.required_action.get(*a).copied().unwrap_or(0))
            .collect();
        let since = behind_since(nights, pick, &m.source);
        let cls = if m.overdue > 0 {
            " class=\"behind\""
        } else {
            ""
        };
        let _ = write!(
            h,
            "<tr{cls} data-source=\"{s}\"><td>{s}</td><td class=\"overdue\">{o}</td><td class=\"compliance-pct\">{c}</td>\
             <td class=\"behind-since\">{since}</td><td>{f}</td><td class=\"split\">{bar}</td>",
            s = esc(&m.source),
            o = m.overdue,
            c = fmt_pct(m.compliance_pct),
            since = since.map_or_else(|| "–".into(), NightDate::text),
            f = m.flagged,
            bar = split_bar(&counts),
        );
        for c in &counts {
            let _ = write!(h, "<td>{c}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div>");
}

/// The first night of the unbroken run of published nights, ending with
/// the newest, on which `source` had overdue records.
fn behind_since(nights: &[Night<'_>], pick: Pick, source: &str) -> Option<NightDate> {
    let mut since = None;
    for n in nights.iter().rev() {
        match pick(n).iter().find(|m| m.source == source) {
            Some(m) if m.overdue > 0 => since = Some(n.date),
            _ => break,
        }
    }
    since
}

/// A stacked bar of the flagged rows by required action.
fn split_bar(counts: &[u64]) -> String {
    let total: u64 = counts.iter().sum();
    let mut out = String::from(
        "<svg width=\"120\" height=\"12\" viewBox=\"0 0 120 12\" role=\"img\" aria-label=\"required actions\">",
    );
    let mut x = 0.0;
    for (c, color) in counts.iter().zip(ACTION_COLORS) {
        if total == 0 || *c == 0 {
            continue;
        }
        let w = 120.0 * *c as f64 / total as f64;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"0\" width=\"{w:.1}\" height=\"12\" fill=\"{color}\"/>"
        );
        x += w;
    }
    out.push_str("</svg>");
    out
}

fn reasons_table(h: &mut String, now: &[SourceMetrics]) {
    let reasons: Vec<&String> = now
        .first()
        .map(|m| m.flags_by_reason.keys().collect())
        .unwrap_or_default();
    let _ = write!(
        h,
        "<div class=\"scroll\"><table><thead><tr><th>Lý do / Reason</th>"
    );
    for m in now {
        let _ = write!(h, "<th>{}</th>", m.source);
    }
    h.push_str("</tr></thead><tbody>");
    for r in reasons {
        let _ = write!(h, "<tr><td>{r}</td>");
        for m in now {
            let _ = write!(
                h,
                "<td>{}</td>",
                m.flags_by_reason.get(r).copied().unwrap_or(0)
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div>");
}

/// A line chart, one line per source, y from 0 to `top` (percentages:
/// 100), or to the largest value rounded up (counts: `None`).
fn chart(
    h: &mut String,
    title: &str,
    nights: &[Night],
    pick: Pick,
    top: Option<f64>,
    value: fn(&SourceMetrics) -> Option<f64>,
) {
    let (w, ht, pad) = (560.0, 220.0, 30.0);
    let n = nights.len().max(2) as f64 - 1.0;
    let mut series: BTreeMap<&str, Vec<(usize, f64)>> = BTreeMap::new();
    for (i, night) in nights.iter().enumerate() {
        for m in pick(night) {
            if let Some(v) = value(m) {
                series.entry(m.source.as_str()).or_default().push((i, v));
            }
        }
    }
    let top = top.unwrap_or_else(|| {
        let max = series
            .values()
            .flatten()
            .map(|(_, v)| *v)
            .fold(0.0, f64::max);
        nice_ceiling(max)
    });
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / n;
    let y = |v: f64| ht - pad - (ht - 2.0 * pad) * v / top;
    let _ = write!(h, "<figure><figcaption>{title}</figcaption><svg class=\"chart\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"{title}\">");
    for g in [0.0, top / 2.0, top] {
        let _ = write!(h, "<line x1=\"{pad}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#ddd\"/><text x=\"2\" y=\"{:.1}\" font-size=\"10\">{g}</text>", w - pad, y(g) + 3.0, y0 = y(g));
    }
    if let (Some(first), Some(last)) = (nights.first(), nights.last()) {
        let _ = write!(h, "<text x=\"{pad}\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>", ht - 8.0, first.date, w - pad, ht - 8.0, last.date);
    }
    for (k, (source, points)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let pts: Vec<String> = points
            .iter()
            .map(|(i, v)| format!("{:.1},{:.1}", x(*i), y(*v)))
            .collect();
        let _ = write!(h, "<polyline class=\"series\" data-source=\"{source}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>", pts.join(" "));
        for (i, v) in points {
            let _ = write!(h, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{source} {v:.2}</title></circle>", x(*i), y(*v));
        }
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"{color}\">{source}</text>",
            w - pad + 2.0 - 60.0,
            14.0 + 11.0 * k as f64
        );
    }
    h.push_str("</svg></figure>");
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `v` (at least 10).
fn nice_ceiling(v: f64) -> f64 {
    let mut step = 10.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if step * m >= v {
                return step * m;
            }
        }
        step *= 10.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn night<'a>(date: &'a str, carriers: &'a [SourceMetrics]) -> Night<'a> {
        Night {
            date: date.parse().unwrap(),
            carriers,
            banks: &[],
            sources: &[],
        }
    }

    fn with_overdue(overdue: u64) -> SourceMetrics {
        let mut m: SourceMetrics = serde_json::from_value(serde_json::json!({
            "as_of": "2026-11-20", "source": "AAA", "extract_as_of": "2026-11-20", "total": 10,
            "rows_rejected": 0, "out_of_scope": 0, "flagged": 4, "clean": 6, "clean_pct": 60.0,
            "flags_by_reason": {}, "flagged_blocked": 0, "newly_flagged": 0, "resolved": 0,
            "baseline_flagged": 4, "resolved_since_baseline": 0, "cleanup_progress_pct": 0.0
        }))
        .unwrap();
        m.overdue = overdue;
        m.required_action = [("NOTIFY".to_string(), 1), ("LOCK_ONE_WAY".to_string(), 3)].into();
        m.compliance_pct = Some(33.33);
        m
    }

    #[test]
    fn a_source_behind_shows_since_when_and_its_actions() {
        let (a, b, c, d) = (
            [with_overdue(2)],
            [with_overdue(0)],
            [with_overdue(1)],
            [with_overdue(3)],
        );
        let nights = [
            night("2026-11-20", &a),
            night("2026-11-21", &b),
            night("2026-11-22", &c),
            night("2026-11-23", &d),
        ];
        assert_eq!(
            behind_since(&nights, carriers_of, "AAA").map(NightDate::text),
            Some("2026-11-22".into())
        );
        assert_eq!(behind_since(&nights[..2], carriers_of, "AAA"), None);
        let page = render(&nights);
        assert!(
            page.contains("<td class=\"behind-since\">2026-11-22</td>"),
            "{page}"
        );
        assert!(page.contains("<td class=\"compliance-pct\">33.33</td>"));
        assert!(page.contains("Overdue records"));
        assert_eq!(nice_ceiling(3.0), 10.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
    }
}
