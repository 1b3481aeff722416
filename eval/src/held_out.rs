//! Warnings that a suite's test episodes are not held out from training (a replayed workload
//! whose every episode is the same trace, or a split evaluated on its training part): on
//! stderr and at the top of report.md.

use lepton_env::scenario::EpisodeUse;
use lepton_eval::suite::Suite;

/// One line per scenario of `suite` whose test episodes are not held out.
pub fn warnings(suite: &Suite) -> Vec<String> {
    suite
        .scenarios
        .iter()
        .filter_map(|s| {
            let name = format!("scenario `{}` ({})", s.name, s.path);
            s.scenario.held_out_warning(&name, EpisodeUse::Test)
        })
        .collect()
}

/// `markdown` with each warning as a quoted line after its first (title) line.
pub fn mark_report(markdown: String, warnings: &[String]) -> String {
    if warnings.is_empty() {
        return markdown;
    }
    let (title, rest) = markdown.split_once('\n').unwrap_or((&markdown, ""));
    let block: String = warnings
        .iter()
        .map(|w| format!("> **Warning:** {w}\n"))
        .collect();
    format!("{title}\n\n{block}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_go_after_the_title() {
        let warned = mark_report("# Report\n\nbody\n".into(), &["w1".into(), "w2".into()]);
        assert_eq!(
            warned,
            "# Report\n\n> **Warning:** w1\n> **Warning:** w2\n\nbody\n"
        );
        assert_eq!(mark_report("# R\n".into(), &[]), "# R\n");
    }
}
