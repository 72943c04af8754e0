//! Groups records into scenarios (in order of first appearance) with one summary per figure.

use super::record::{Figure, Record};
use super::stats::{summarize, FigureSummary};

/// One scenario of a lab run, ready to render.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Scenario id.
    pub id: String,
    /// Scenario title.
    pub title: String,
    /// Notes, in record order.
    pub notes: Vec<String>,
    /// One summary per figure name, in order of first appearance.
    pub figures: Vec<FigureSummary>,
    /// Every (tool, command) pair measured in the scenario, first appearance first.
    pub commands: Vec<(String, String)>,
    /// Ids of the plots fed by this scenario's records.
    pub plots: Vec<String>,
}

/// Groups `records` into scenarios.
pub fn scenarios(records: &[Record]) -> Vec<Scenario> {
    let mut out: Vec<Scenario> = Vec::new();
    let mut figures: Vec<Vec<(String, Vec<&Figure>)>> = Vec::new();
    for r in records {
        let (id, title) = r.scenario();
        let i = match out.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                out.push(Scenario {
                    id: id.to_string(),
                    title: title.to_string(),
                    notes: Vec::new(),
                    figures: Vec::new(),
                    commands: Vec::new(),
                    plots: Vec::new(),
                });
                figures.push(Vec::new());
                out.len() - 1
            }
        };
        let s = &mut out[i];
        let command = match r {
            Record::Note(n) => {
                s.notes.push(n.text.clone());
                None
            }
            Record::Series(series) => {
                push_unique(&mut s.plots, &series.plot);
                Some((series.tool.clone(), series.command.clone()))
            }
            Record::Figure(f) => {
                if let Some(p) = &f.plot {
                    push_unique(&mut s.plots, &p.id);
                }
                match figures[i].iter_mut().find(|(name, _)| *name == f.figure) {
                    Some((_, list)) => list.push(f),
                    None => figures[i].push((f.figure.clone(), vec![f])),
                }
                Some((f.tool.clone(), f.command.clone()))
            }
        };
        if let Some(c) = command {
            if !c.1.is_empty() && !s.commands.contains(&c) {
                s.commands.push(c);
            }
        }
    }
    for (s, figs) in out.iter_mut().zip(figures) {
        s.figures = figs
            .iter()
            .filter_map(|(_, list)| summarize(list))
            .collect();
    }
    out
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|p| p == item) {
        list.push(item.to_string());
    }
}
