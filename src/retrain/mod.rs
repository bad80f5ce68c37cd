//! Pure decisions of the retraining loop: triggers, schedules, searches, reports, evaluation gates and the
//! run's progress.

pub mod cron;
pub mod gates;
pub mod jobs;
pub mod report;
pub mod request;
pub mod run;
pub mod search;
pub mod summary;
pub mod triggers;
