//! The outcome of a suite run: one [`Outcome`] per requirement, printed as a table or as JSON.

use serde::Serialize;

use crate::requirements::{Level, Requirement};

/// How one requirement fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Status {
    /// Observed and met.
    Pass,
    /// Observed and not met: what was seen.
    Fail(String),
    /// Not observed: why.
    Skipped(String),
}

/// One requirement's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The requirement id.
    pub id: &'static str,
    /// Its title.
    pub title: &'static str,
    /// Required or recommended.
    pub level: Level,
    /// What happened.
    #[serde(flatten)]
    pub status: Status,
}

/// Every outcome of a run, in requirement order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The outcomes.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// Records an outcome.
    pub fn record(&mut self, requirement: &Requirement, status: Status) {
        self.outcomes.push(Outcome {
            id: requirement.id,
            title: requirement.title,
            level: requirement.level,
            status,
        });
    }

    /// Whether every required requirement passed (a skipped required one does not pass).
    pub fn required_passed(&self) -> bool {
        self.outcomes
            .iter()
            .filter(|o| o.level == Level::Required)
            .all(|o| o.status == Status::Pass)
    }

    /// The ids that failed.
    pub fn failed_ids(&self) -> Vec<&'static str> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.status, Status::Fail(_)))
            .map(|o| o.id)
            .collect()
    }

    /// The report as a JSON value: `{"passed":bool,"outcomes":[{id,title,level,status,reason}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "passed": self.required_passed(),
            "outcomes": self.outcomes,
        })
    }

    /// The report as a text table.
    pub fn to_table(&self) -> String {
        let width = self.outcomes.iter().map(|o| o.id.len()).max().unwrap_or(2);
        let mut out = String::new();
        for o in &self.outcomes {
            let (status, reason) = match &o.status {
                Status::Pass => ("pass", String::new()),
                Status::Fail(why) => ("FAIL", format!(" ({why})")),
                Status::Skipped(why) => ("skipped", format!(" ({why})")),
            };
            let level = match o.level {
                Level::Required => "",
                Level::Recommended => " [recommended]",
            };
            out.push_str(&format!(
                "{:<width$}  {:<7}  {}{level}{reason}\n",
                o.id, status, o.title
            ));
        }
        let count = |f: fn(&Status) -> bool| self.outcomes.iter().filter(|o| f(&o.status)).count();
        out.push_str(&format!(
            "{} passed, {} failed, {} skipped\n",
            count(|s| *s == Status::Pass),
            count(|s| matches!(s, Status::Fail(_))),
            count(|s| matches!(s, Status::Skipped(_))),
        ));
        out
    }
}
