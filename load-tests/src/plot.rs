//! SVG plots of a run's [`crate::timeline::Timeline`]: latency, throughput and projection lag
//! second by second, with the injected faults and the recorded steps marked on every plot.
//! It only draws what the timeline holds; nothing in the report is computed here.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::timeline::{Second, Timeline};

/// File name of the latency plot.
pub const LATENCY_SVG: &str = "latency.svg";
/// File name of the throughput plot.
pub const THROUGHPUT_SVG: &str = "throughput.svg";
/// File name of the projection lag plot.
pub const LAG_SVG: &str = "lag.svg";

/// Size of every plot (px).
const SIZE: (u32, u32) = (1000, 450);
/// Length of the x axis when the timeline holds nothing to place on it (s).
const EMPTY_SECONDS: f64 = 60.0;
/// Faults are drawn in red, so no series uses it.
const FAULT: RGBColor = RED;
/// Colour of the lag line.
const LAG: RGBColor = RGBColor(148, 103, 189);

/// What plotters' SVG backend reports when drawing or writing fails.
type DrawError = DrawingAreaErrorKind<std::io::Error>;
/// A chart over seconds since start, with `Y` as its y coordinate.
type Chart<'a, Y> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>;
/// Reads one value of a second; `None` is a gap in the line.
type Value = fn(&Second) -> Option<f64>;

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing or writing the file failed (folder not writable, disk full): fix the results
    /// folder; the run itself and its other results are unaffected, so do not rerun it.
    #[error("cannot draw {path}")]
    Draw {
        /// The plot's file.
        path: PathBuf,
        /// What plotters reported.
        #[source]
        source: DrawError,
    },
}

/// Writes the three plots of `timeline` into `dir` (which exists); returns the files written.
/// `title` goes into each plot's caption (e.g. the run name).
///
/// # Errors
/// When a plot cannot be drawn or written; the plots before it are left in place.
pub fn write_all(dir: &Path, title: &str, timeline: &Timeline) -> Result<Vec<PathBuf>, PlotError> {
    type Draw = fn(&Path, &str, &Timeline) -> Result<(), DrawError>;
    let plots: [(&str, Draw); 3] = [(LATENCY_SVG, latency), (THROUGHPUT_SVG, throughput), (LAG_SVG, lag)];
    plots
        .into_iter()
        .map(|(name, draw)| {
            let path = dir.join(name);
            match draw(&path, title, timeline) {
                Ok(()) => Ok(path),
                Err(source) => Err(PlotError::Draw { path, source }),
            }
        })
        .collect()
}

/// p50, p99 and max latency on a log scale; seconds in which no request finished are gaps.
fn latency(path: &Path, title: &str, timeline: &Timeline) -> Result<(), DrawError> {
    let finished = || timeline.seconds.iter().filter(|s| s.p50_ms > 0.0);
    let low = finished().map(|s| s.p50_ms).fold(f64::INFINITY, f64::min);
    // Whole decades at the bottom, so the log axis gets round ticks.
    let bottom = if low.is_finite() { 10_f64.powf(low.log10().floor()) } else { 1.0 };
    let top = finished().map(|s| s.max_ms).fold(0.0, f64::max) * 1.5;
    let top = top.max(bottom * 100.0);
    let series: [(&str, RGBColor, Value); 3] = [
        ("p50", RGBColor(31, 119, 180), |s| (s.p50_ms > 0.0).then_some(s.p50_ms)),
        ("p99", RGBColor(255, 127, 14), |s| (s.p50_ms > 0.0).then_some(s.p99_ms)),
        ("max", RGBColor(140, 140, 140), |s| (s.p50_ms > 0.0).then_some(s.max_ms)),
    ];
    let caption = format!("{title}: latency per second");
    frame(path, &caption, "latency (ms, log scale)", (bottom..top).log_scale(), timeline, |chart| {
        lines(chart, &series, &timeline.seconds)
    })
}

/// Offered load against decided and failed requests per second.
fn throughput(path: &Path, title: &str, timeline: &Timeline) -> Result<(), DrawError> {
    let top = timeline.seconds.iter().map(|s| s.offered.max(s.ok).max(s.failed)).max().unwrap_or(0);
    let series: [(&str, RGBColor, Value); 3] = [
        ("offered (requests/s)", RGBColor(140, 140, 140), |s| Some(count(s.offered))),
        ("ok (decided/s)", RGBColor(44, 160, 44), |s| Some(count(s.ok))),
        ("failed/s", RGBColor(255, 127, 14), |s| Some(count(s.failed))),
    ];
    let caption = format!("{title}: throughput");
    frame(path, &caption, "requests per second", 0.0..headroom(top), timeline, |chart| {
        lines(chart, &series, &timeline.seconds)
    })
}

/// Events the projection has not applied yet; seconds without a sample are gaps.
fn lag(path: &Path, title: &str, timeline: &Timeline) -> Result<(), DrawError> {
    let top = timeline.seconds.iter().filter_map(|s| s.lag_events).max();
    let caption = match top {
        Some(_) => format!("{title}: projection lag"),
        None => format!("{title}: projection lag (no lag samples)"),
    };
    let series: [(&str, RGBColor, Value); 1] = [("lag (events)", LAG, |s| s.lag_events.map(count))];
    frame(path, &caption, "events not yet applied", 0.0..headroom(top.unwrap_or(0)), timeline, |chart| {
        lines(chart, &series, &timeline.seconds)
    })
}

/// Draws one chart into `path`: caption, axes, step shading and separators, then `series`,
/// then the fault lines on top of everything and the legend.
fn frame<Y, F>(
    path: &Path,
    caption: &str,
    y_desc: &str,
    y_range: Y,
    timeline: &Timeline,
    series: F,
) -> Result<(), DrawError>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
    F: FnOnce(&mut Chart<'_, Y::CoordDescType>) -> Result<(), DrawError>,
{
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_end(timeline), y_range)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc(y_desc)
        .light_line_style(BLACK.mix(0.04))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()?;
    let std::ops::Range { start: bottom, end: top } = chart.y_range();
    let small = |color: RGBAColor| ("sans-serif", 12).into_font().color(&color);
    for (i, step) in timeline.steps.iter().enumerate() {
        // Every other step shaded, so neighbours stand apart even where the separators crowd.
        if i % 2 == 0 {
            let span = Rectangle::new([(step.from_s, bottom), (step.to_s, top)], BLUE.mix(0.05).filled());
            chart.draw_series([span])?;
        }
        let edges =
            [step.from_s, step.to_s].map(|x| PathElement::new([(x, bottom), (x, top)], BLACK.mix(0.25)));
        chart.draw_series(edges)?;
        let label = Text::new(step.label.clone(), (4, 4), small(BLACK.mix(0.6)));
        chart.draw_series([EmptyElement::at((step.from_s, top)) + label])?;
    }
    series(&mut chart)?;
    for (i, fault) in timeline.faults.iter().enumerate() {
        let style = FAULT.stroke_width(2);
        let line = DashedPathElement::new([(fault.at_s, bottom), (fault.at_s, top)], 6, 4, style);
        let anno = chart.draw_series([line])?;
        if i == 0 {
            anno.label("fault")
                .legend(move |(x, y)| DashedPathElement::new([(x, y), (x + 20, y)], 4, 3, style));
        }
        let text = match fault.error {
            None => fault.kind.clone(),
            Some(_) => format!("{} (failed)", fault.kind),
        };
        // Staggered so that faults close together keep readable labels.
        let label = Text::new(text, (4, [20, 34, 48][i % 3]), small(FAULT.to_rgba()));
        chart.draw_series([EmptyElement::at((fault.at_s, top)) + label])?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    root.present()
}

/// Draws each of `series` over `seconds` as lines through consecutive known values: a gap
/// where the value is unknown, a dot where a value stands alone.
fn lines<Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'_, Y>,
    series: &[(&str, RGBColor, Value)],
    seconds: &[Second],
) -> Result<(), DrawError> {
    for &(name, color, value) in series {
        let style = color.stroke_width(2);
        // An empty series carries the legend entry, so it shows even when all values are gaps.
        chart
            .draw_series(LineSeries::new(std::iter::empty(), style))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        let mut run = Vec::new();
        for point in seconds.iter().map(|s| value(s).map(|v| (s.t, v))).chain([None]) {
            match point {
                Some(point) => run.push(point),
                None if !run.is_empty() => {
                    let dot = if run.len() == 1 { 2 } else { 0 };
                    chart.draw_series(LineSeries::new(std::mem::take(&mut run), style).point_size(dot))?;
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// End of the x axis: the last second, step or fault, or [`EMPTY_SECONDS`] without any.
fn x_end(timeline: &Timeline) -> f64 {
    let seconds = timeline.seconds.iter().map(|s| s.t + 1.0);
    let steps = timeline.steps.iter().map(|s| s.to_s);
    let faults = timeline.faults.iter().map(|f| f.at_s + f.took_s);
    let end = seconds.chain(steps).chain(faults).fold(0.0, f64::max);
    if end > 0.0 { end } else { EMPTY_SECONDS }
}

/// Top of a linear y axis whose largest value is `largest`: a tenth more, and at least 10.
fn headroom(largest: u64) -> f64 {
    (count(largest) * 1.1).max(10.0)
}

/// A count as a plot value.
#[allow(clippy::cast_precision_loss, reason = "counts per second are far below 2^53")]
fn count(n: u64) -> f64 {
    n as f64
}

/// An axis tick without trailing zeros (`0.5`, `20`, `1000`).
fn tick(value: &f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{FaultMark, StepSpan};

    /// 30 seconds with a fault at 10 s, no finished request at 12 s and no lag sample 15–17 s.
    fn timeline() -> Timeline {
        let seconds = (0..30_u32)
            .map(|i| {
                let t = f64::from(i);
                let finished = i != 12;
                let latency = |ms: f64| if finished { ms } else { 0.0 };
                Second {
                    t,
                    offered: 200,
                    ok: if (10..14).contains(&i) { 50 } else { 200 },
                    failed: if (10..14).contains(&i) { 150 } else { 0 },
                    dropped: 0,
                    p50_ms: latency(0.8 + t / 10.0),
                    p99_ms: latency(12.0 + t),
                    max_ms: latency(40.0 + 10.0 * t),
                    lag_events: (!(15..18).contains(&i)).then_some(u64::from(i) * 7),
                }
            })
            .collect();
        let fault = FaultMark {
            kind: "kill-command".to_owned(),
            at_s: 10.0,
            took_s: 1.5,
            failed: 600,
            recovery_s: 4.0,
            worst_p99_ms: 42.0,
            error: None,
        };
        let step =
            |label: &str, from_s, to_s| StepSpan { label: label.to_owned(), from_s, to_s, rate: 200.0 };
        Timeline {
            seconds,
            faults: vec![fault],
            steps: vec![step("warm-up", 0.0, 5.0), step("200/s", 5.0, 30.0)],
        }
    }

    /// A fresh folder for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("holdfast-plot-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        dir
    }

    #[test]
    fn writes_three_svgs_with_fault_marks() {
        let dir = scratch("full");
        let written = write_all(&dir, "test-run", &timeline()).expect("plots are written");
        assert_eq!(written, [LATENCY_SVG, THROUGHPUT_SVG, LAG_SVG].map(|name| dir.join(name)));
        for path in &written {
            let svg = std::fs::read_to_string(path).expect("plot exists");
            assert!(svg.starts_with("<svg"), "{} is not an SVG", path.display());
            assert!(svg.len() > 4000, "{} is only {} bytes", path.display(), svg.len());
            for text in ["kill-command", "test-run", "seconds since start", "warm-up"] {
                assert!(svg.contains(text), "{} lacks {text}", path.display());
            }
        }
        let lag = std::fs::read_to_string(dir.join(LAG_SVG)).expect("lag plot exists");
        assert!(!lag.contains("no lag samples"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_missing_sample_splits_the_line() {
        // Lines in the lag colour: the legend's, then one per run of samples.
        let lag_lines = |name: &str, timeline: &Timeline| {
            let dir = scratch(name);
            write_all(&dir, "gaps", timeline).expect("plots are written");
            let svg = std::fs::read_to_string(dir.join(LAG_SVG)).expect("lag plot exists");
            std::fs::remove_dir_all(&dir).ok();
            let RGBColor(r, g, b) = LAG;
            svg.matches(&format!(r##"stroke="#{r:02X}{g:02X}{b:02X}""##)).count()
        };
        let gapped = timeline();
        let mut whole = gapped.clone();
        whole.seconds.iter_mut().for_each(|s| s.lag_events = Some(5));
        assert_eq!(lag_lines("gapped", &gapped), lag_lines("whole", &whole) + 1);
    }

    #[test]
    fn an_empty_timeline_still_gets_its_plots() {
        let dir = scratch("empty");
        let written = write_all(&dir, "empty-run", &Timeline::default()).expect("plots are written");
        assert_eq!(written.len(), 3);
        for path in &written {
            let svg = std::fs::read_to_string(path).expect("plot exists");
            assert!(svg.starts_with("<svg") && svg.contains("seconds since start"), "{}", path.display());
        }
        let lag = std::fs::read_to_string(dir.join(LAG_SVG)).expect("lag plot exists");
        assert!(lag.contains("no lag samples"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
