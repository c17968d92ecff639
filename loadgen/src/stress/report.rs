//! What a stress run leaves for people: a few lines on the terminal, and a self-contained HTML
//! report with the figures and two plots with axes (the figures themselves go to `report.json`).

use std::fmt::Write as _;

use serde_json::Value;

/// The run in a few lines for a person; the figures are all in `report.json`.
pub(super) fn human_summary(report: &Value, cleanup: &str, dir: &std::path::Path) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let d = &report["deliveries"];
    let lat = &report["latency"];
    let line = |name: &str, v: &Value| {
        format!(
            "  {name:<22} p50 {:>8.1} ms   p99 {:>8.1} ms   max {:>8.1} ms",
            f(&v["p50_ms"]),
            f(&v["p99_ms"]),
            f(&v["max_ms"])
        )
    };
    let verdict = if report["ok"] == true {
        "OK: every delivery accounted for"
    } else {
        "FAILED: deliveries lost, duplicated or out of order"
    };
    [
        format!("stress: {verdict}"),
        format!(
            "  comments   {} sent, {} acknowledged, {} refused, {:.1}/s over {:.1} s",
            report["comments_sent"],
            report["comments_acked"],
            report["comments_refused"],
            f(&report["acked_per_sec"]),
            f(&report["write_seconds"])
        ),
        format!(
            "  deliveries {} of {} expected to {} subscribers: {} lost, {} duplicated, {} out of order",
            d["received"], d["expected"], report["subscribers"], d["lost"], d["duplicated"], d["out_of_order"]
        ),
        line("send -> acknowledged", &lat["command_ack"]),
        line("ack -> pushed", &lat["ack_to_push"]),
        line("ack -> queryable", &lat["ack_to_queryable"]),
        format!("  {cleanup}"),
        format!(
            "  report: {} (figures: {})",
            dir.join("report.html").display(),
            dir.join("report.json").display()
        ),
    ]
    .join("\n")
}

/// A self-contained HTML report: a table of the figures and two inline SVG plots with axes.
pub(super) fn html(report: &Value, timeline: &[(u64, u64, f64, f64)]) -> String {
    let plot = |title: &str, series: &[(&str, &str, Vec<f64>)], y_label: &str| {
        // Plot area inside margins for the axes' ticks and labels.
        let (w, h, left, bottom, top, right) = (640.0, 240.0, 64.0, 40.0, 12.0, 16.0);
        let (pw, ph) = (w - left - right, h - top - bottom);
        let max = series
            .iter()
            .flat_map(|s| s.2.iter().copied())
            .fold(1e-9, f64::max);
        let n = series.first().map_or(0, |s| s.2.len()).max(2);
        let x = |i: f64| left + i * pw / (n - 1) as f64;
        let y = |v: f64| top + ph - v / max * ph;
        let mut svg = format!(
            "<figure><figcaption>{title}</figcaption><svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{title}\" font-size=\"11\">"
        );
        // Axes, with ticks at 0, half and the maximum on y, and at every fifth of the run on x.
        let _ = write!(
            svg,
            "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#555\"/><line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\"/>",
            top + ph,
            top + ph,
            left + pw,
            top + ph
        );
        for frac in [0.0, 0.5, 1.0] {
            let v = max * frac;
            let _ = write!(
                svg,
                "<line x1=\"{}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.1}</text>",
                left,
                y(v),
                left + pw,
                y(v),
                left - 6.0,
                y(v) + 4.0
            );
        }
        for k in 0..=5 {
            let i = (n - 1) as f64 * f64::from(k) / 5.0;
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{:.0}</text>",
                x(i),
                top + ph + 16.0,
                i
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">seconds since the run started</text><text transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{y_label}</text>",
            left + pw / 2.0,
            h - 4.0,
            top + ph / 2.0
        );
        for (name, colour, values) in series {
            let points: String = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{:.1},{:.1} ", x(i as f64), y(*v)))
                .collect();
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{points}\"><title>{name}</title></polyline>"
            );
        }
        svg.push_str("</svg></figure>");
        svg
    };
    let deliveries: Vec<f64> = timeline.iter().map(|t| t.1 as f64).collect();
    let p50: Vec<f64> = timeline.iter().map(|t| t.2).collect();
    let p99: Vec<f64> = timeline.iter().map(|t| t.3).collect();
    let verdict = if report["ok"] == true {
        "Every delivery accounted for"
    } else {
        "Deliveries LOST, DUPLICATED or OUT OF ORDER"
    };
    let escape = |s: String| s.replace('&', "&amp;").replace('<', "&lt;");
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let d = &report["deliveries"];
    let mut rows = vec![
        (
            "Target".to_owned(),
            escape(report["target"].as_str().unwrap_or_default().to_owned()),
        ),
        (
            "Load".to_owned(),
            format!(
                "{} posts, {} writers, {} subscribers, {} comments/s asked",
                report["posts"], report["writers"], report["subscribers"], report["rate_target"]
            ),
        ),
        (
            "Comments".to_owned(),
            format!(
                "{} sent, {} acknowledged, {} refused; {:.1} acknowledged/s over {:.1} s",
                report["comments_sent"],
                report["comments_acked"],
                report["comments_refused"],
                f(&report["acked_per_sec"]),
                f(&report["write_seconds"])
            ),
        ),
        (
            "Deliveries".to_owned(),
            format!(
                "{} of {} expected; {} lost, {} duplicated, {} out of order",
                d["received"], d["expected"], d["lost"], d["duplicated"], d["out_of_order"]
            ),
        ),
    ];
    for (name, key) in [
        ("Send → acknowledged", "command_ack"),
        ("Acknowledged → pushed", "ack_to_push"),
        ("Acknowledged → queryable", "ack_to_queryable"),
    ] {
        let l = &report["latency"][key];
        rows.push((
            name.to_owned(),
            format!(
                "p50 {:.1} ms · p90 {:.1} ms · p99 {:.1} ms · max {:.1} ms ({} samples)",
                f(&l["p50_ms"]),
                f(&l["p90_ms"]),
                f(&l["p99_ms"]),
                f(&l["max_ms"]),
                l["samples"]
            ),
        ));
    }
    let reads = &report["reads"];
    rows.push((
        "Post page reads".to_owned(),
        format!(
            "{} ({} errors), p50 {:.1} ms, p99 {:.1} ms",
            reads["count"],
            reads["errors"],
            f(&reads["latency"]["p50_ms"]),
            f(&reads["latency"]["p99_ms"])
        ),
    ));
    let table: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><th scope=\"row\">{k}</th><td>{v}</td></tr>"))
        .collect();
    let pretty = escape(serde_json::to_string_pretty(report).unwrap_or_default());
    format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Inkwire stress report</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}}table{{border-collapse:collapse}}th,td{{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}}pre{{background:#f5f5f5;padding:1rem;overflow:auto}}</style>\
         <h1>Inkwire stress report</h1><p><strong>{verdict}</strong></p><h2>Figures</h2><table>{table}</table>{}{}<details><summary>Every figure (report.json)</summary><pre>{pretty}</pre></details></html>",
        plot(
            "Acknowledged → pushed latency over time (p50 blue, p99 red)",
            &[("p50", "#1d4ed8", p50), ("p99", "#b42318", p99)],
            "milliseconds"
        ),
        plot(
            "Deliveries per second",
            &[("deliveries", "#067647", deliveries)],
            "deliveries per second"
        ),
    )
}
