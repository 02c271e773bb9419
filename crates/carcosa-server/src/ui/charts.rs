//! Charts as server-rendered SVG (no script, no library): a line for a count over days and
//! stacked bars for deliveries by outcome over hours. Each chart has a title and a text
//! description for screen readers, and a table fallback is one click away on its page.

use chrono::{DateTime, NaiveDate, Utc};
use maud::{Markup, html};

use crate::store::HourlyDeliveries;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

/// The y axis's top: `max` rounded up to a readable number (at least 1).
fn nice_ceiling(max: i64) -> i64 {
    let max = max.max(1);
    let magnitude = 10_i64.pow(max.ilog10());
    [1, 2, 5, 10].iter().map(|m| m * magnitude).find(|top| *top >= max).unwrap_or(10 * magnitude)
}

#[expect(clippy::cast_precision_loss, reason = "chart coordinates of counts far below 2^52")]
fn y_of(value: i64, top: i64) -> f64 {
    TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - value as f64 / top as f64)
}

fn axes(top: i64) -> Markup {
    let base = HEIGHT - BOTTOM;
    html! {
        line.axis x1=(LEFT) y1=(base) x2=(WIDTH) y2=(base) {}
        line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(base) {}
        text x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (top) }
        text x=(LEFT - 6.0) y=(base) text-anchor="end" { "0" }
    }
}

/// Live tenants at the end of each day.
#[must_use]
pub fn tenants_over_time(series: &[(NaiveDate, i64)]) -> Markup {
    let top = nice_ceiling(series.iter().map(|(_, n)| *n).max().unwrap_or(0));
    #[expect(clippy::cast_precision_loss, reason = "a few dozen points")]
    let step = (WIDTH - LEFT) / (series.len().max(2) - 1) as f64;
    #[expect(clippy::cast_precision_loss, reason = "a few dozen points")]
    let points: Vec<(f64, f64)> =
        series.iter().enumerate().map(|(i, (_, n))| (LEFT + step * i as f64, y_of(*n, top))).collect();
    let line = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" ");
    let base = HEIGHT - BOTTOM;
    let area = match (points.first(), points.last()) {
        (Some(first), Some(last)) => format!("{:.1},{base:.1} {line} {:.1},{base:.1}", first.0, last.0),
        _ => String::new(),
    };
    let (first, last) = (series.first(), series.last());
    let summary = match (first, last) {
        (Some((d0, n0)), Some((d1, n1))) => format!("Live tenants from {d0} ({n0}) to {d1} ({n1})."),
        _ => "No data.".to_owned(),
    };
    html! {
        figure {
            figcaption id="chart-tenants" { "Live tenants, last " (series.len()) " days" }
            svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-labelledby="chart-tenants chart-tenants-desc" {
                desc id="chart-tenants-desc" { (summary) }
                (axes(top))
                polygon.area points=(area) {}
                polyline.line points=(line) {}
                @if let Some((day, _)) = first { text x=(LEFT) y=(HEIGHT - 6.0) { (day.format("%b %-d")) } }
                @if let Some((day, _)) = last { text x=(WIDTH) y=(HEIGHT - 6.0) text-anchor="end" { (day.format("%b %-d")) } }
            }
        }
    }
}

/// One coloured part of a bar.
struct Bar {
    class: &'static str,
    x: f64,
    y: f64,
    height: f64,
    title: String,
}

/// Webhook deliveries created in each hour, stacked by outcome.
#[must_use]
pub fn deliveries_by_outcome(series: &[(DateTime<Utc>, HourlyDeliveries)]) -> Markup {
    let total = |d: &HourlyDeliveries| d.succeeded + d.failed + d.pending;
    let top = nice_ceiling(series.iter().map(|(_, d)| total(d)).max().unwrap_or(0));
    #[expect(clippy::cast_precision_loss, reason = "24 bars")]
    let slot = (WIDTH - LEFT) / series.len().max(1) as f64;
    let bar = (slot * 0.8).max(1.0);
    let mut rects = Vec::new();
    for (i, (hour, d)) in series.iter().enumerate() {
        #[expect(clippy::cast_precision_loss, reason = "24 bars")]
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut below = 0;
        for (class, word, n) in
            [("ok", "delivered", d.succeeded), ("bad", "failed", d.failed), ("wait", "pending", d.pending)]
        {
            if n > 0 {
                let y = y_of(below + n, top);
                let height = y_of(below, top) - y;
                rects.push(Bar {
                    class,
                    x,
                    y,
                    height,
                    title: format!("{}: {n} {word}", hour.format("%H:00")),
                });
                below += n;
            }
        }
    }
    let sum =
        series.iter().fold((0, 0, 0), |(s, f, p), (_, d)| (s + d.succeeded, f + d.failed, p + d.pending));
    html! {
        figure {
            figcaption id="chart-deliveries" { "Webhook deliveries by outcome, last 24 hours" }
            svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-labelledby="chart-deliveries chart-deliveries-desc" {
                desc id="chart-deliveries-desc" {
                    (sum.0) " delivered, " (sum.1) " failed, " (sum.2) " pending in the last 24 hours."
                }
                (axes(top))
                @for rect in &rects {
                    rect class=(rect.class) x=(format!("{:.1}", rect.x)) y=(format!("{:.1}", rect.y))
                        width=(format!("{bar:.1}")) height=(format!("{:.1}", rect.height)) {
                        title { (rect.title) }
                    }
                }
                @if let Some((hour, _)) = series.first() { text x=(LEFT) y=(HEIGHT - 6.0) { (hour.format("%H:00")) } }
                @if let Some((hour, _)) = series.last() { text x=(WIDTH) y=(HEIGHT - 6.0) text-anchor="end" { (hour.format("%H:00 UTC")) } }
            }
            p.legend.muted { span { i.ok {} "delivered" } span { i.bad {} "failed" } span { i.wait {} "pending" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_numbers_at_or_above_the_maximum() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(999), 1000);
        assert_eq!(nice_ceiling(1001), 2000);
    }

    #[test]
    fn charts_draw_their_data() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let series: Vec<_> = (0..3).map(|i| (day + chrono::TimeDelta::days(i), i * 2)).collect();
        let svg = tenants_over_time(&series).into_string();
        assert!(svg.contains("polyline"), "{svg}");
        assert!(svg.contains("Live tenants from 2026-11-01 (0) to 2026-11-03 (4)."), "{svg}");
        let now = "2026-11-27T10:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let hours = vec![(now, HourlyDeliveries { succeeded: 3, failed: 1, pending: 0 })];
        let svg = deliveries_by_outcome(&hours).into_string();
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(svg.contains("3 delivered, 1 failed, 0 pending"), "{svg}");
    }
}
