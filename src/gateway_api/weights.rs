//! Gateway API backend weights are relative (`1` and `3` mean 25 % and 75 %); the model
//! wants shares that add up to exactly [`Weight::FULL`]. Owns only that conversion.

use crate::model::Weight;

/// Shares of [`Weight::FULL`] proportional to `weights`, adding up to it exactly, or
/// `None` when every weight is 0 (or there are none).
///
/// Each share is rounded down, and the units left over go one each to the largest
/// remainders, the earlier backend first on a tie: deterministic, and never to a
/// backend of weight 0.
pub(super) fn normalize(weights: &[u32]) -> Option<Vec<Weight>> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let full = u64::from(Weight::FULL.units());
    let mut units: Vec<u64> = weights
        .iter()
        .map(|w| u64::from(*w) * full / total)
        .collect();
    let left = full - units.iter().sum::<u64>();
    let mut by_remainder: Vec<(u64, usize)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| (u64::from(*w) * full % total, i))
        .collect();
    // Largest remainder first; among equal ones, the lower index.
    by_remainder.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in by_remainder.into_iter().take(left as usize) {
        units[i] += 1;
    }
    let shares = units
        .into_iter()
        .map(|u| Weight::from_units(u32::try_from(u).expect("a share is at most FULL")))
        .collect();
    Some(shares)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(weights: &[u32]) -> Vec<u32> {
        normalize(weights)
            .unwrap()
            .into_iter()
            .map(Weight::units)
            .collect()
    }

    #[test]
    fn one_to_three_is_exactly_a_quarter() {
        assert_eq!(units(&[1, 3]), vec![250_000, 750_000]);
        assert_eq!(units(&[90, 10]), vec![900_000, 100_000]);
        assert_eq!(units(&[5]), vec![1_000_000]);
    }

    #[test]
    fn thirds_add_up_to_exactly_full() {
        let thirds = units(&[1, 1, 1]);
        assert_eq!(thirds, vec![333_334, 333_333, 333_333]);
        assert_eq!(thirds.iter().sum::<u32>(), Weight::FULL.units());
        for weights in [
            &[1, 1, 1, 1, 1, 1, 1][..],
            &[7, 0, 13, 1_000_000],
            &[2, 3, 3],
        ] {
            let shares = units(weights);
            assert_eq!(
                shares.iter().sum::<u32>(),
                Weight::FULL.units(),
                "{weights:?}"
            );
            for (w, s) in weights.iter().zip(&shares) {
                assert_eq!(*w == 0, *s == 0, "{weights:?} → {shares:?}");
            }
        }
    }

    #[test]
    fn all_zero_has_no_shares() {
        assert_eq!(normalize(&[0, 0]), None);
        assert_eq!(normalize(&[]), None);
    }
}
