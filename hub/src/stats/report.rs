//! The monthly analysis (每月分析研判): a month's figures gathered from the
//! aggregates, written as one self-contained HTML file (tables and inline
//! SVG charts; nothing fetched when it is opened) and as CSV.

use std::fmt::Write as _;

use super::facts::Counts;
use super::figures::{Figures, Ranked, rank_departments};
use super::names;
use crate::markup::escape;
use crate::store::{CellFilter, DailyCount, Dimension, Store, StoreError};

/// One breakdown of the month: its rows, biggest first.
#[derive(Clone, Debug)]
pub struct Breakdown {
    pub by: Dimension,
    pub title: &'static str,
    pub rows: Vec<(String, String, Figures)>,
}

/// What the report says.
#[derive(Clone, Debug)]
pub struct Report {
    pub month: String,
    pub previous_month: String,
    pub region: Option<String>,
    pub total: Figures,
    pub previous: Figures,
    pub breakdowns: Vec<Breakdown>,
    pub departments: Vec<Ranked>,
    /// Matters received per day of the month.
    pub daily: Vec<(String, i64)>,
    /// Early-warning alerts of the month's days.
    pub alerts: Vec<crate::store::StoredAlert>,
}

/// Whether `text` is a month written `YYYY-MM`.
pub fn is_month(text: &str) -> bool {
    text.len() == 7
        && text.as_bytes()[4] == b'-'
        && text[..4].bytes().all(|b| b.is_ascii_digit())
        && matches!(text[5..].parse::<u32>(), Ok(1..=12))
}

/// The month before `YYYY-MM`.
pub fn previous_month(month: &str) -> Option<String> {
    if !is_month(month) {
        return None;
    }
    let (y, m) = month.split_once('-')?;
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    Some(if m == 1 { format!("{:04}-12", y - 1) } else { format!("{y:04}-{:02}", m - 1) })
}

fn days_of(month: &str) -> Option<(String, String)> {
    let first = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    let next = first.checked_add_months(chrono::Months::new(1))?;
    let last = next.pred_opt()?;
    Some((first.format("%Y-%m-%d").to_string(), last.format("%Y-%m-%d").to_string()))
}

/// The steps [`gather`] goes through, for a progress bar.
pub const STEPS: u64 = 10;

/// Gathers a month's report; `step` is called after each of [`STEPS`] queries.
pub async fn gather(
    store: &Store,
    month: &str,
    region: Option<String>,
    mut step: impl FnMut(&str),
) -> Result<Report, StoreError> {
    let previous_month =
        previous_month(month).ok_or_else(|| StoreError::Invalid(format!("`{month}` is not a month like 2026-11")))?;
    let (first, last) = days_of(month).ok_or_else(|| StoreError::Invalid(format!("`{month}` is not a month")))?;
    let filter = CellFilter { from_month: month.to_string(), to_month: month.to_string(), region: region.clone() };
    let total = store.cell_total(&filter).await?;
    step("totals");
    let prev = CellFilter { from_month: previous_month.clone(), to_month: previous_month.clone(), ..filter.clone() };
    let previous = store.cell_total(&prev).await?;
    step("previous month");
    let mut breakdowns = Vec::new();
    let mut department_rows = Vec::new();
    for (by, title) in [
        (Dimension::Channel, "按渠道 By channel"),
        (Dimension::County, "按县区 By county"),
        (Dimension::Township, "按乡镇街道 By township"),
        (Dimension::Category, "按类别 By category"),
        (Dimension::Department, "按承办部门 By department"),
    ] {
        let rows = store.cell_sums(&filter, by).await?;
        if by == Dimension::Department {
            department_rows = rows.clone();
        }
        let mut named: Vec<(String, String, Figures)> =
            rows.iter().map(|(k, c)| (k.clone(), name(by, k), Figures::of(c))).collect();
        named.sort_by(|a, b| b.2.received.cmp(&a.2.received).then_with(|| a.0.cmp(&b.0)));
        breakdowns.push(Breakdown { by, title, rows: named });
        step(by.column());
    }
    let daily_rows: Vec<DailyCount> = store.daily_received(&first, &last, region.as_deref()).await?;
    let mut daily = std::collections::BTreeMap::<String, i64>::new();
    let mut day = chrono::NaiveDate::parse_from_str(&first, "%Y-%m-%d").ok();
    while let Some(d) = day.filter(|d| d.format("%Y-%m-%d").to_string() <= last) {
        daily.insert(d.format("%Y-%m-%d").to_string(), 0);
        day = d.succ_opt();
    }
    for r in daily_rows {
        *daily.entry(r.day).or_default() += r.received;
    }
    step("days");
    let departments = rank_departments(&department_rows);
    step("ranking");
    let alerts = store.alerts_between(&first, &last, region.as_deref(), 1000).await?;
    step("alerts");
    Ok(Report {
        month: month.to_string(),
        previous_month,
        region,
        total: Figures::of(&total),
        previous: Figures::of(&previous),
        breakdowns,
        departments,
        daily: daily.into_iter().collect(),
        alerts,
    })
}

fn name(by: Dimension, key: &str) -> String {
    crate::api::stats::name_of(by, key).unwrap_or_else(|| if key.is_empty() { "—".into() } else { key.to_string() })
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_string(), |r| format!("{:.1}%", r * 100.0))
}

fn hours(h: Option<f64>) -> String {
    h.map_or_else(|| "—".to_string(), |h| format!("{h:.1}"))
}

/// A CSV field, quoted when it must be; a leading `=`, `+`, `-` or `@` is
/// prefixed so that a spreadsheet does not run it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

const FIGURE_HEADERS: [&str; 10] = [
    "received",
    "closed",
    "closure_rate",
    "on_time_rate",
    "satisfaction_rate",
    "rated",
    "reopened",
    "overdue",
    "avg_handling_hours",
    "p90_handling_hours",
];

fn figure_cells(f: &Figures) -> [String; 10] {
    let rate = |r: Option<f64>| r.map(|r| format!("{r:.4}")).unwrap_or_default();
    let h = |h: Option<f64>| h.map(|h| format!("{h:.2}")).unwrap_or_default();
    [
        f.received.to_string(),
        f.closed.to_string(),
        rate(f.closure_rate),
        rate(f.on_time_rate),
        rate(f.satisfaction_rate),
        f.rated.to_string(),
        f.reopened.to_string(),
        f.overdue.to_string(),
        h(f.avg_handling_hours),
        h(f.p90_handling_hours),
    ]
}

impl Report {
    /// One CSV: a row per (breakdown, group), the month's total first.
    pub fn csv(&self) -> String {
        let mut out = format!("month,region,breakdown,key,name,{}\n", FIGURE_HEADERS.join(","));
        let region = self.region.clone().unwrap_or_else(|| "220400".into());
        let mut line = |breakdown: &str, key: &str, name: &str, f: &Figures| {
            let cells = figure_cells(f);
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                self.month,
                region,
                breakdown,
                csv_field(key),
                csv_field(name),
                cells.join(",")
            );
        };
        line("total", "", "合计", &self.total);
        for b in &self.breakdowns {
            for (key, name, f) in &b.rows {
                line(b.by.column(), key, name, f);
            }
        }
        out
    }

    /// The self-contained HTML page.
    pub fn html(&self) -> String {
        let region = self.region.as_deref().and_then(names::region).unwrap_or("辽源市");
        let mut h = String::new();
        let _ = write!(
            h,
            r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{region} {month} 社会治理月度分析研判</title>
<style>
body{{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em auto;max-width:1100px;color:#1c2833}}
h1{{font-size:1.6em}} h2{{margin-top:2em;border-bottom:2px solid #2e86c1;padding-bottom:.2em}}
table{{border-collapse:collapse;width:100%;font-size:.9em}} th,td{{padding:.3em .5em;border-bottom:1px solid #d5d8dc;text-align:right}}
th:first-child,td:first-child,td.name{{text-align:left}} .kpi{{display:flex;gap:1em;flex-wrap:wrap}}
.kpi div{{background:#eaf2f8;padding:.8em 1.2em;border-radius:6px;min-width:9em}} .kpi b{{display:block;font-size:1.6em}}
.note{{color:#566573;font-size:.85em}}
</style></head><body>
<h1>{region} {month} 社会治理月度分析研判</h1>
<p class="note">Monthly analysis of matters received in {month} (by the month each matter was received), from the hub's aggregates. Rates: 办结率 closed / received; 按期办结率 finished by the deadline among finished matters with one; 满意率 satisfied among rated (kept apart from closure).</p>
<div class="kpi">"#,
            month = escape(&self.month),
        );
        let t = &self.total;
        let delta = |now: i64, before: i64| -> String {
            if before == 0 {
                return String::new();
            }
            let d = (now - before) as f64 / before as f64 * 100.0;
            format!("<span class=\"note\"> 环比 {d:+.1}%</span>")
        };
        for (label, value, extra) in [
            ("受理 received", t.received.to_string(), delta(t.received, self.previous.received)),
            ("办结 closed", t.closed.to_string(), String::new()),
            ("办结率", pct(t.closure_rate), String::new()),
            ("按期办结率", pct(t.on_time_rate), String::new()),
            ("满意率", pct(t.satisfaction_rate), String::new()),
            ("重办 reopened", t.reopened.to_string(), String::new()),
            ("超期 overdue", t.overdue.to_string(), String::new()),
            ("平均办理时长 h", hours(t.avg_handling_hours), String::new()),
            ("P90 办理时长 h", hours(t.p90_handling_hours), String::new()),
        ] {
            let _ = write!(h, "<div>{}<b>{}</b>{extra}</div>", escape(label), escape(&value));
        }
        h.push_str("</div>\n<h2>每日受理 Received per day</h2>\n");
        h.push_str(&self.daily_chart());
        for b in &self.breakdowns {
            let _ = writeln!(h, "<h2>{}</h2>", escape(b.title));
            if matches!(b.by, Dimension::Channel | Dimension::County) {
                h.push_str(&bar_chart(&b.rows.iter().map(|(_, n, f)| (n.clone(), f.received)).collect::<Vec<_>>()));
            }
            h.push_str(&figures_table(&b.rows));
        }
        h.push_str("<h2>承办部门排名 Department ranking</h2>\n<p class=\"note\">Ranked by the Wilson score lower bound (95%) of the on-time rate, so that a department with a handful of matters is neither crowned nor shamed by them; departments with nothing finished against a deadline are not ranked.</p>\n<table><tr><th>排名</th><th>部门</th><th>得分</th><th>受理</th><th>办结</th><th>按期办结率</th><th>满意率</th></tr>\n");
        for r in &self.departments {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"name\">{}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.rank,
                escape(&r.department),
                r.score,
                r.figures.received,
                r.figures.closed,
                pct(r.figures.on_time_rate),
                pct(r.figures.satisfaction_rate)
            );
        }
        h.push_str("</table>\n<h2>近期频发事件预警 Early-warning alerts</h2>\n");
        if self.alerts.is_empty() {
            h.push_str("<p>本月无预警 No alert this month.</p>\n");
        } else {
            h.push_str("<table><tr><th>日期</th><th>方法</th><th>依据 Evidence</th></tr>\n");
            for a in &self.alerts {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"name\">{}</td></tr>",
                    escape(&a.day),
                    escape(&a.method),
                    escape(&a.evidence)
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str("</body></html>\n");
        h
    }

    fn daily_chart(&self) -> String {
        let max = self.daily.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
        let (w, hgt, pad) = (1000.0, 220.0, 24.0);
        let n = self.daily.len().max(1) as f64;
        let step = (w - 2.0 * pad) / n;
        let mut svg = format!(
            r##"<svg viewBox="0 0 {w} {hgt}" width="100%" role="img" aria-label="received per day"><line x1="{pad}" y1="{base}" x2="{x2}" y2="{base}" stroke="#808b96"/>"##,
            base = hgt - pad,
            x2 = w - pad
        );
        for (i, (day, count)) in self.daily.iter().enumerate() {
            let bh = (*count as f64 / max as f64) * (hgt - 2.0 * pad);
            let x = pad + i as f64 * step;
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}" fill="#2e86c1"><title>{day}: {count}</title></rect>"##,
                y = hgt - pad - bh,
                bw = (step * 0.8).max(1.0),
            );
            if i % 5 == 0 {
                let _ = write!(
                    svg,
                    r##"<text x="{x:.1}" y="{ty}" font-size="11" fill="#566573">{}</text>"##,
                    escape(day.get(5..).unwrap_or(day)),
                    ty = hgt - 6.0
                );
            }
        }
        let _ = write!(svg, r##"<text x="{pad}" y="14" font-size="11" fill="#566573">max {max}</text></svg>"##);
        svg
    }
}

fn bar_chart(rows: &[(String, i64)]) -> String {
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let row_h = 26.0;
    let height = row_h * rows.len() as f64 + 10.0;
    let mut svg = format!(r#"<svg viewBox="0 0 1000 {height}" width="100%" role="img">"#);
    for (i, (name, n)) in rows.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let width = (*n as f64 / max as f64) * 700.0;
        let _ = write!(
            svg,
            r##"<text x="0" y="{ty:.1}" font-size="14">{}</text><rect x="200" y="{y:.1}" width="{width:.1}" height="{bh}" fill="#48c9b0"/><text x="{tx:.1}" y="{ty:.1}" font-size="13">{n}</text>"##,
            escape(name),
            ty = y + 16.0,
            bh = row_h - 6.0,
            tx = 206.0 + width
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn figures_table(rows: &[(String, String, Figures)]) -> String {
    let mut t = String::from(
        "<table><tr><th>名称</th><th>代码</th><th>受理</th><th>办结</th><th>办结率</th><th>按期办结率</th><th>满意率</th><th>重办</th><th>超期</th><th>平均时长h</th><th>P90时长h</th></tr>\n",
    );
    for (key, name, f) in rows {
        let _ = writeln!(
            t,
            "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(key),
            f.received,
            f.closed,
            pct(f.closure_rate),
            pct(f.on_time_rate),
            pct(f.satisfaction_rate),
            f.reopened,
            f.overdue,
            hours(f.avg_handling_hours),
            hours(f.p90_handling_hours)
        );
    }
    t.push_str("</table>\n");
    t
}

/// Sums of nothing: a month with no matters still renders.
pub fn empty() -> Figures {
    Figures::of(&Counts::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_step_back_across_the_year() {
        assert_eq!(previous_month("2026-01").as_deref(), Some("2025-12"));
        assert_eq!(previous_month("2026-11").as_deref(), Some("2026-10"));
        assert_eq!(days_of("2024-02"), Some(("2024-02-01".into(), "2024-02-29".into())));
        assert_eq!(previous_month("junk"), None);
        assert_eq!(previous_month("2026-7"), None);
        assert_eq!(previous_month("2026-13"), None);
    }

    #[test]
    fn the_page_stands_alone_and_escapes_what_it_shows() {
        let r = Report {
            month: "2026-11".into(),
            previous_month: "2026-10".into(),
            region: None,
            total: empty(),
            previous: empty(),
            breakdowns: vec![Breakdown {
                by: Dimension::Department,
                title: "按承办部门 By department",
                rows: vec![("<b>局</b>".into(), "=HYPERLINK(\"x\")".into(), empty())],
            }],
            departments: vec![],
            daily: vec![("2026-11-01".into(), 3)],
            alerts: vec![],
        };
        let html = r.html();
        assert!(!html.contains("<b>局</b>") && html.contains("&lt;b&gt;局&lt;/b&gt;"));
        for fetch in ["http://", "https://", "src=", "@import", "url("] {
            assert!(!html.contains(fetch), "the page must fetch nothing: {fetch}");
        }
        let csv = r.csv();
        assert!(csv.contains("'=HYPERLINK"), "{csv}");
        assert!(csv.starts_with("month,region,breakdown,key,name,received,"));
    }
}
