//! The scorer's weights: how many log-odds each kind of evidence moves.
//!
//! Every piece of evidence [`score`](super::score()) weighs is one
//! [`Feature`] with a value (1 for a fact, the content agreement for a
//! shared identifier, …); the score is the logistic function of the
//! weighted sum. The weights are data (`weights.csv` next to this file),
//! written by `hub duplicates fit` ([`fit`](super::fit())): a logistic
//! regression over the features of candidate pairs of labelled sets, with a
//! Gaussian prior around each feature's `prior` below so that a feature the
//! labelled sets rarely show keeps a sensible weight instead of swinging on
//! two examples. The priors are the round numbers the scorer used before it
//! was fitted (but one: "same reporter, different problem" went from -1 to
//! -3 per unit of content difference when it became a fixed rule, so that
//! one caller's two problems stay two tickets whatever else the fit moves);
//! each says which way a piece of evidence should move an operator and
//! roughly how far.

use std::sync::LazyLock;

macro_rules! features {
    ($($variant:ident = $name:literal, $prior:expr;)*) => {
        /// One kind of evidence, with the weight the fit gives it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Feature {
            $($variant,)*
        }

        impl Feature {
            pub const ALL: &'static [Feature] = &[$(Feature::$variant,)*];

            /// The name in `weights.csv`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Feature::$variant => $name,)*
                }
            }

            /// The weight before fitting, and the centre of the fit's prior.
            pub fn prior(self) -> f64 {
                match self {
                    $(Feature::$variant => $prior,)*
                }
            }
        }
    };
}

features! {
    Bias = "bias", -2.0;
    // Text similarity of the content, by bins (0..1).
    TextNone = "text_below_0.02", -2.8;
    TextTrace = "text_0.02_0.05", -1.6;
    TextLow = "text_0.05_0.09", -0.2;
    TextSome = "text_0.09_0.13", 1.0;
    TextMuch = "text_0.13_0.18", 2.2;
    TextHigh = "text_0.18_0.25", 3.0;
    TextSame = "text_above_0.25", 3.0;
    // What the matter is.
    SameCategory = "same_category", 1.0;
    DifferentCategory = "different_category", -2.5;
    DifferentCategoryAcrossChannels = "different_category_across_channels", -1.0;
    DifferentFamily = "different_family", -3.0;
    // Where.
    DifferentTownship = "different_township", -5.0;
    SameVillage = "same_village_code", 1.0;
    DifferentVillage = "different_village_code", -2.5;
    SameHouse = "same_house", 3.0;
    NearbyHouse = "nearby_house", -1.0;
    DifferentHouse = "different_house", -3.0;
    SameCrossing = "same_crossing", 2.5;
    DifferentCrossing = "different_crossing", -1.5;
    SameStreet = "same_street", 0.6;
    DifferentStreets = "different_streets", -2.0;
    SameCommunity = "same_community", 1.5;
    DifferentCommunity = "different_community", -4.0;
    SameBuilding = "same_building", 1.5;
    DifferentBuilding = "different_building", -3.0;
    SameGroup = "same_group", 1.0;
    DifferentGroup = "different_group", -2.0;
    Within50m = "within_50m", 1.5;
    Within150m = "within_150m", 0.5;
    Within400m = "within_400m", -1.0;
    Within1km = "within_1km", -2.0;
    Beyond1km = "beyond_1km", -3.0;
    // When.
    Within2h = "within_2h", 1.0;
    Within12h = "within_12h", 0.5;
    Within3d = "within_3d", 0.0;
    Within10d = "within_10d", -0.5;
    Within30d = "within_30d", -1.0;
    LaterChannel30d = "later_channel_within_30d", 0.0;
    Beyond30d = "beyond_30d", -2.5;
    SameMonthSaid = "same_month_said", 0.5;
    DifferentMonthSaid = "different_month_said", -1.5;
    // How much, how many.
    SameAmount = "same_amount", 2.0;
    DifferentAmount = "different_amount", -3.0;
    SameCount = "same_count", 1.0;
    DifferentCount = "different_count", -1.5;
    SameMeasure = "same_measure", 1.5;
    DifferentMeasure = "different_measure", -1.5;
    // Who.
    SameOrganisation = "same_organisation", 1.5;
    DifferentOrganisation = "different_organisation", -2.0;
    SameRecord = "same_record", 6.0;
    DifferentCases = "different_cases", -3.0;
    SamePhone = "same_phone", 2.5;
    SameIdNumber = "same_id_number", 2.5;
    SameIdNumberAndPhone = "same_id_number_and_phone", 0.5;
    SameFullName = "same_full_name", 1.2;
    SameFullNames = "same_full_names", 2.0;
    SameWeakName = "same_weak_name", 0.0;
    SameNameOfKnownPerson = "same_name_of_known_person", 0.2;
    OtherPartyDiffers = "other_party_differs", -2.0;
    SameReporterDifferentContent = "same_reporter_different_content", -3.0;
    DifferentPeople = "different_id_numbers", -4.0;
    DifferentReporters = "different_phones", -1.5;
    DifferentSurnames = "different_surnames", -2.5;
}

/// The shipped weights, fitted (see the module's doc).
const SHIPPED: &str = include_str!("weights.csv");

static WEIGHTS: LazyLock<Weights> = LazyLock::new(|| match Weights::parse(SHIPPED) {
    Ok(w) => w,
    // A test (`shipped_weights_parse`) keeps this from happening; should a
    // bad file slip through, the priors still score sensibly.
    Err(_) => Weights::priors(),
});

/// One weight per [`Feature`].
#[derive(Clone, Debug, PartialEq)]
pub struct Weights(Vec<f64>);

impl Weights {
    pub fn priors() -> Weights {
        Weights(Feature::ALL.iter().map(|f| f.prior()).collect())
    }

    pub fn shipped() -> &'static Weights {
        &WEIGHTS
    }

    pub fn get(&self, f: Feature) -> f64 {
        self.0[f as usize]
    }

    pub(crate) fn from_vec(v: Vec<f64>) -> Weights {
        debug_assert_eq!(v.len(), Feature::ALL.len());
        Weights(v)
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    /// Reads `name,weight` lines (`#` comments); a feature the file does
    /// not name keeps its prior, a name the scorer does not know is an error.
    pub fn parse(text: &str) -> Result<Weights, String> {
        let mut w = Weights::priors();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line == "feature,weight" {
                continue;
            }
            let (name, value) = line.split_once(',').ok_or_else(|| format!("line {}: expected name,weight", n + 1))?;
            let f = Feature::ALL
                .iter()
                .find(|f| f.name() == name.trim())
                .ok_or_else(|| format!("line {}: no feature {name:?}", n + 1))?;
            let v: f64 = value.trim().parse().map_err(|_| format!("line {}: {value:?} is not a number", n + 1))?;
            if !v.is_finite() {
                return Err(format!("line {}: {value:?} is not finite", n + 1));
            }
            w.0[*f as usize] = v;
        }
        Ok(w)
    }

    /// The CSV form [`Weights::parse`] reads, with a header comment.
    pub fn to_csv(&self, comment: &str) -> String {
        let mut out = String::new();
        for line in comment.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("feature,weight\n");
        for f in Feature::ALL {
            out.push_str(&format!("{},{:.3}\n", f.name(), self.get(*f)));
        }
        out
    }
}

thread_local! {
    /// Weights a fit is trying out on this thread (see [`with_weights`]).
    static TRIAL: std::cell::RefCell<Option<Weights>> = const { std::cell::RefCell::new(None) };
}

/// The weight of a feature: the shipped one, or the trial weights of
/// [`with_weights`] on this thread.
pub(crate) fn w(f: Feature) -> f64 {
    TRIAL.with_borrow(|t| t.as_ref().map(|t| t.get(f))).unwrap_or_else(|| WEIGHTS.get(f))
}

/// Runs `f` with `weights` in place of the shipped ones on this thread:
/// how a fit's cross-validation scores a held-back fold with the weights
/// fitted without it. Intake never calls this.
pub fn with_weights<T>(weights: &Weights, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Weights>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            TRIAL.with_borrow_mut(|t| *t = before);
        }
    }
    let _restore = Restore(TRIAL.with_borrow_mut(|t| t.replace(weights.clone())));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_weights_parse() {
        let w = Weights::parse(SHIPPED).expect("weights.csv");
        assert_eq!(w.as_slice().len(), Feature::ALL.len());
    }

    #[test]
    fn round_trip_and_errors() {
        let w = Weights::priors();
        assert_eq!(Weights::parse(&w.to_csv("x")).unwrap(), w);
        assert!(Weights::parse("nonsense,1").unwrap_err().contains("no feature"));
        assert!(Weights::parse("bias,NaN").is_err());
        assert!(Weights::parse("bias").is_err());
    }

    #[test]
    fn trial_weights_apply_inside_and_only_inside() {
        let shipped = w(Feature::SameHouse);
        let mut trial = Weights::priors();
        trial.0[Feature::SameHouse as usize] = 42.0;
        assert_eq!(with_weights(&trial, || w(Feature::SameHouse)), 42.0);
        assert_eq!(w(Feature::SameHouse), shipped);
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<_> = Feature::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Feature::ALL.len());
    }
}
