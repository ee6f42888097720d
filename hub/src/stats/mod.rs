//! Figures for the centre's screen and the monthly analysis, kept as
//! events happen rather than counted per request, and the early warning
//! of frequent events computed on them.

pub mod alerts;
pub mod facts;
pub mod figures;
pub mod names;
pub mod report;
pub mod warning;
