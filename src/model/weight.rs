//! Traffic weights with enough resolution for fractional canaries (0.0001 %).

use std::fmt;

/// A share of traffic in millionths: `Weight::FULL` is 100 %, one unit is 0.0001 %.
///
/// Istio writes weights as integer percentages; coalmine also accepts fractional ones
/// (`0.01`), and this unit keeps every weight with up to four decimals exact, so that a
/// 0.01 % canary is never rounded away on its way to Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Weight(u32);

impl Weight {
    /// Units in one percent.
    pub const PER_PERCENT: u32 = 10_000;
    pub const ZERO: Weight = Weight(0);
    pub const FULL: Weight = Weight(100 * Self::PER_PERCENT);

    /// A weight from a percentage, or `None` when it is negative, over 100, not finite,
    /// or finer than 0.0001 %.
    pub fn from_percent(percent: f64) -> Option<Weight> {
        if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
            return None;
        }
        let units = percent * f64::from(Self::PER_PERCENT);
        let rounded = units.round();
        if (units - rounded).abs() > 1e-6 {
            return None;
        }
        Some(Weight(rounded as u32))
    }

    pub const fn from_units(units: u32) -> Weight {
        Weight(units)
    }

    pub const fn units(self) -> u32 {
        self.0
    }

    pub fn percent(self) -> f64 {
        f64::from(self.0) / f64::from(Self::PER_PERCENT)
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_four_decimals_exact() {
        assert_eq!(Weight::from_percent(0.01).unwrap().units(), 100);
        assert_eq!(Weight::from_percent(0.0001).unwrap().units(), 1);
        assert_eq!(Weight::from_percent(100.0), Some(Weight::FULL));
        assert_eq!(Weight::from_percent(33.3333).unwrap().units(), 333_333);
    }

    #[test]
    fn rejects_out_of_range_and_too_fine() {
        assert_eq!(Weight::from_percent(-1.0), None);
        assert_eq!(Weight::from_percent(100.5), None);
        assert_eq!(Weight::from_percent(0.00001), None);
        assert_eq!(Weight::from_percent(f64::NAN), None);
    }
}
