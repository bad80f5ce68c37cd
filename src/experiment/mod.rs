//! Pure decisions of an Experiment: counters since the start per series, and (with the statistics of
//! `analysis::stats`) what the numbers decide.

pub mod counters;
pub mod decision;
pub mod lifecycle;
pub mod non_inferiority;
pub mod promotion;
pub mod serving;
