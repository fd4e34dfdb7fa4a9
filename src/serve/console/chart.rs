//! Line charts drawn on the server as SVG and handed to the page as a
//! `data:` image, so the page needs no chart script and the chart's text
//! never becomes markup in the page.

use base64::Engine;

/// One line of a chart.
pub(super) struct Line<'a> {
    pub name: &'a str,
    pub color: &'a str,
    /// One value per point (none where there is no data).
    pub values: Vec<Option<f64>>,
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 34.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A short number: 1.2k, 3.4M, 0.25.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The chart as SVG: `labels` name the points (first and last are drawn).
pub(super) fn svg(title: &str, labels: &[String], lines: &[Line<'_>]) -> String {
    let n = lines
        .iter()
        .map(|l| l.values.len())
        .fold(labels.len(), usize::max)
        .max(1);
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().flatten().copied())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let x = |i: usize| LEFT + (W - LEFT - RIGHT) * if n > 1 { i as f64 / (n - 1) as f64 } else { 0.5 };
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - v / top);
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11"><rect width="{W}" height="{H}" fill="#fff"/><text x="{LEFT}" y="15" font-size="12" font-weight="bold" fill="#1d2330">{}</text>"##,
        esc(title)
    );
    for k in 0..=4 {
        let v = top * f64::from(k) / 4.0;
        let yy = y(v);
        out.push_str(&format!(
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e3e7ee"/><text x="{}" y="{:.1}" text-anchor="end" fill="#5b6577">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            short(v)
        ));
    }
    if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
        out.push_str(&format!(
            r##"<text x="{LEFT}" y="{}" fill="#5b6577">{}</text><text x="{}" y="{}" text-anchor="end" fill="#5b6577">{}</text>"##,
            H - 10.0,
            esc(first),
            W - RIGHT,
            H - 10.0,
            esc(last)
        ));
    }
    let mut legend_x = W - RIGHT;
    for line in lines.iter().rev() {
        let pts: Vec<String> = line
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| format!("{:.1},{:.1}", x(i), y(v))))
            .collect();
        if !pts.is_empty() {
            out.push_str(&format!(
                r##"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"##,
                esc(line.color),
                pts.join(" ")
            ));
            // Dots too, so a lone point shows.
            for p in &pts {
                if let Some((cx, cy)) = p.split_once(',') {
                    out.push_str(&format!(
                        r##"<circle cx="{cx}" cy="{cy}" r="2.5" fill="{}"/>"##,
                        esc(line.color)
                    ));
                }
            }
        }
        out.push_str(&format!(
            r##"<text x="{legend_x:.1}" y="15" text-anchor="end" fill="{}">{}</text>"##,
            esc(line.color),
            esc(line.name)
        ));
        legend_x -= 9.0 + 7.0 * line.name.len() as f64;
    }
    out.push_str("</svg>");
    out
}

/// The chart as a `data:` URL for an `<img>`.
pub(super) fn data_url(title: &str, labels: &[String], lines: &[Line<'_>]) -> String {
    let svg = svg(title, labels, lines);
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_their_text_and_scale_to_the_largest_value() {
        let labels = vec!["10:00".to_string(), "<b>".to_string()];
        let lines = [Line {
            name: "req<s>",
            color: "#2456d6",
            values: vec![Some(10.0), None, Some(2500.0)],
        }];
        let s = svg("t<x>", &labels, &lines);
        assert!(s.contains("t&lt;x&gt;") && s.contains("req&lt;s&gt;") && s.contains("&lt;b&gt;"));
        assert!(!s.contains("<b>"));
        assert!(s.contains("2.8k"), "the top grid line is 1.1 × the largest: {s}");
        assert!(data_url("t", &labels, &lines).starts_with("data:image/svg+xml;base64,"));
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(1_500_000.0), "1.5M");
    }
}
