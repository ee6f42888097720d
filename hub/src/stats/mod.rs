//! Figures for the centre's screen and the monthly analysis, kept as
//! events happen rather than counted per request.
pub mod warning;
