//! Pure decisions of the retraining loop: triggers, schedules, searches, evaluation gates.

pub mod cron;
