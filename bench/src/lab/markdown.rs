//! The markdown report: per scenario, a table of figure | kreplay | best peer | ratio.

use std::fmt::Write;

use super::model::Scenario;
use super::record::Better;
use super::stats::FigureSummary;

/// What the report's header states.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `YYYY-MM-DD-HHMM`, the file stem.
    pub stamp: String,
    /// Machine description.
    pub machine: String,
    /// The command that produced the records.
    pub command: String,
}

/// A number with a precision that suits its size (thousands separated above 1,000).
pub fn format_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        let rounded = v.round() as i64;
        let digits = rounded.unsigned_abs().to_string();
        let groups: Vec<&str> = digits
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|g| std::str::from_utf8(g).unwrap_or_default())
            .collect();
        let mut out = groups.join(",");
        if rounded < 0 {
            out.insert(0, '-');
        }
        out
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format_number(*v))
        .collect::<Vec<_>>()
        .join(", ")
}

fn direction(b: Better) -> &'static str {
    match b {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    }
}

fn figure_row(f: &FigureSummary) -> String {
    let kreplay = match &f.kreplay {
        Some(k) if f.violates_expectation() => format!(
            "**{} — expected {} in every run; saw {}**",
            format_number(k.median),
            format_number(f.expect.unwrap_or_default()),
            list(&f.unexpected)
        ),
        Some(k) => format_number(k.median),
        None => "n/a".into(),
    };
    let (peer, peer_value) = match &f.best_peer {
        Some(p) => (p.tool.clone(), format_number(p.median)),
        None => ("n/a".into(), "n/a".into()),
    };
    let ratio = f.ratio.map_or("n/a".into(), |r| format!("{r:.2}"));
    let others: Vec<String> = f
        .peers
        .iter()
        .filter(|p| Some(*p) != f.best_peer.as_ref())
        .map(|p| format!("{} {}", p.tool, format_number(p.median)))
        .collect();
    let others = if others.is_empty() {
        String::new()
    } else {
        others.join(", ")
    };
    format!(
        "| {} | {} | {} | {kreplay} | {peer} | {peer_value} | {ratio} | {others} |",
        f.figure,
        f.unit,
        direction(f.better)
    )
}

/// Renders the report; `plot_file(id)` names the SVG of a plot, or `None` when it was not drawn.
pub fn render(
    info: &RunInfo,
    scenarios: &[Scenario],
    plot_file: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# kreplay benchmark lab, {}\n", info.stamp);
    let _ = writeln!(md, "Machine: {}\n", info.machine);
    let _ = writeln!(md, "Command: `{}`\n", info.command);
    let _ = writeln!(
        md,
        "Each figure is the median of its repeats, measured in the same run for every tool. \
         *Best peer* is the best value among the other tools (highest or lowest, as the figure's \
         direction says); the ratio is kreplay / best peer, so above 1 favours kreplay when higher is \
         better and below 1 favours it when lower is better. *n/a*: no peer can report the figure.\n"
    );
    let problems: Vec<String> = scenarios
        .iter()
        .flat_map(|s| {
            s.figures
                .iter()
                .filter(|f| f.violates_expectation())
                .map(move |f| {
                    format!(
                        "- **{}: {}** expected {} in every run, saw {:?}",
                        s.title,
                        f.figure,
                        format_number(f.expect.unwrap_or_default()),
                        f.unexpected
                    )
                })
        })
        .collect();
    if !problems.is_empty() {
        let _ = writeln!(md, "## ⚠ PROBLEMS\n\n{}\n", problems.join("\n"));
    }
    for s in scenarios {
        let _ = writeln!(md, "## {} (`{}`)\n", s.title, s.id);
        for n in &s.notes {
            let _ = writeln!(md, "{n}\n");
        }
        if !s.figures.is_empty() {
            let _ = writeln!(
                md,
                "| figure | unit | direction | kreplay | best peer | peer value | kreplay / peer | other peers |"
            );
            let _ = writeln!(md, "| --- | --- | --- | --- | --- | --- | --- | --- |");
            for f in &s.figures {
                let _ = writeln!(md, "{}", figure_row(f));
            }
            md.push('\n');
        }
        for id in &s.plots {
            if let Some(file) = plot_file(id) {
                let _ = writeln!(md, "![{id}]({file})\n");
            }
        }
        if !s.commands.is_empty() {
            let _ = writeln!(md, "<details><summary>Commands</summary>\n");
            for (tool, command) in &s.commands {
                let _ = writeln!(md, "- {tool}: `{}`", command.replace('`', "'"));
            }
            let _ = writeln!(md, "\n</details>\n");
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_by_size() {
        assert_eq!(format_number(1234567.4), "1,234,567");
        assert_eq!(format_number(-4321.0), "-4,321");
        assert_eq!(format_number(999.6), "1000");
        assert_eq!(format_number(12.34), "12.3");
        assert_eq!(format_number(1.234), "1.23");
        assert_eq!(format_number(0.01234), "0.012");
        assert_eq!(format_number(0.0), "0");
    }
}
