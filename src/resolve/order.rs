//! RFC 2782 ordering: priority first, then a weighted random draw within each priority.
//!
//! SRV (RFC 2782) and URI (RFC 7553) records share one selection rule: a client must try
//! the lowest priority first, and among records of equal priority pick at random with a
//! probability proportional to each record's weight, removing each pick and drawing again
//! until the group is empty. Weight 0 means "no preference"; such records "should have a
//! very small chance of being selected" while records with a positive weight remain.
//!
//! The RFC's own recipe (sum the weights, draw `r` in `0..=sum`, take the first record whose
//! running sum is `>= r`, weight-0 records first) has an off-by-one: without a weight-0 record
//! the first record in the list also wins `r = 0`, so weights 1:3 come out 2:3 instead of
//! 1:3. We keep its intent and drop the bias:
//!
//! * some weight is positive and weight-0 records remain: draw `r` in `0..=sum`; `r = 0`
//!   picks a weight-0 record (chance `1 / (sum + 1)`, shared evenly among them: the RFC
//!   allows them "any order"), any other `r` picks the positive record whose running sum
//!   first reaches `r` (chance `w / (sum + 1)`);
//! * only positive weights remain: draw `r` in `1..=sum` (chance exactly `w / sum`);
//! * only weight-0 records remain: "any order" — we pick uniformly, which spreads load the
//!   way an operator who wrote no preference expects.
//!
//! The random source is a parameter, so tests (and `resolve --seed`) get a fixed order.

use rand::Rng;

/// A record that takes part in RFC 2782 selection.
pub trait Weighted {
    /// Lower is tried first.
    fn priority(&self) -> u16;
    /// Relative chance among records of the same priority.
    fn weight(&self) -> u16;
}

/// Orders `items` the way a client must try them (RFC 2782, see the module doc).
///
/// Records of equal priority keep their given order as the starting arrangement, so the
/// result depends only on the input order and the random source.
pub fn rfc2782_order<T: Weighted, R: Rng + ?Sized>(items: Vec<T>, rng: &mut R) -> Vec<T> {
    let mut items = items;
    // A stable sort keeps the arrival order inside each priority.
    items.sort_by_key(Weighted::priority);

    let mut ordered = Vec::with_capacity(items.len());
    let mut rest = items.into_iter().peekable();
    while let Some(first) = rest.next() {
        let priority = first.priority();
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|item| item.priority() == priority) {
            group.push(next);
        }
        order_group(group, rng, &mut ordered);
    }
    ordered
}

/// Weighted draws without replacement from one priority group, appended to `out`.
fn order_group<T: Weighted, R: Rng + ?Sized>(group: Vec<T>, rng: &mut R, out: &mut Vec<T>) {
    // RFC 2782: "all those with weight 0 are placed at the beginning of the list".
    let (mut group, positive): (Vec<T>, Vec<T>) =
        group.into_iter().partition(|item| item.weight() == 0);
    let zeros_left = group.len();
    group.extend(positive);
    let mut zeros_left = zeros_left;

    while !group.is_empty() {
        let sum: u64 = group.iter().map(|item| u64::from(item.weight())).sum();
        let index = if sum == 0 {
            rng.gen_range(0..group.len())
        } else {
            let low = if zeros_left > 0 { 0 } else { 1 };
            match rng.gen_range(low..=sum) {
                // The weight-0 records are still at the front of `group`.
                0 => rng.gen_range(0..zeros_left),
                draw => pick(&group, draw),
            }
        };
        if group[index].weight() == 0 {
            zeros_left -= 1;
        }
        out.push(group.remove(index));
    }
}

/// Index of the first record whose running weight sum is `>= draw`.
fn pick<T: Weighted>(group: &[T], draw: u64) -> usize {
    let mut running = 0u64;
    for (index, item) in group.iter().enumerate() {
        running += u64::from(item.weight());
        if running >= draw {
            return index;
        }
    }
    // `draw <= sum`, so the loop always returns; the last record is the only sane fallback.
    group.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[derive(Clone, Debug, PartialEq)]
    struct Rec {
        name: &'static str,
        priority: u16,
        weight: u16,
    }

    impl Weighted for Rec {
        fn priority(&self) -> u16 {
            self.priority
        }
        fn weight(&self) -> u16 {
            self.weight
        }
    }

    fn rec(name: &'static str, priority: u16, weight: u16) -> Rec {
        Rec {
            name,
            priority,
            weight,
        }
    }

    fn names(records: &[Rec]) -> Vec<&'static str> {
        records.iter().map(|r| r.name).collect()
    }

    /// How often each name comes first over `draws` orderings.
    fn first_share(records: &[Rec], name: &str, draws: u32, seed: u64) -> f64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut hits = 0u32;
        for _ in 0..draws {
            let ordered = rfc2782_order(records.to_vec(), &mut rng);
            if ordered[0].name == name {
                hits += 1;
            }
        }
        f64::from(hits) / f64::from(draws)
    }

    #[test]
    fn weights_one_to_three_put_the_heavier_first_three_times_in_four() {
        let records = [rec("light", 10, 1), rec("heavy", 10, 3)];
        let share = first_share(&records, "heavy", 10_000, 7);
        // Expected 0.75; the standard deviation over 10,000 draws is 0.0043.
        assert!((share - 0.75).abs() < 0.02, "heavy first in {share}");
        // The list order must not matter (the RFC's literal recipe favours the first entry).
        let swapped = [rec("heavy", 10, 3), rec("light", 10, 1)];
        let share = first_share(&swapped, "heavy", 10_000, 8);
        assert!((share - 0.75).abs() < 0.02, "heavy first in {share}");
    }

    #[test]
    fn three_weights_are_proportional() {
        let records = [rec("a", 1, 10), rec("b", 1, 30), rec("c", 1, 60)];
        for (name, expected) in [("a", 0.10), ("b", 0.30), ("c", 0.60)] {
            let share = first_share(&records, name, 10_000, 11);
            assert!((share - expected).abs() < 0.02, "{name} first in {share}");
        }
    }

    #[test]
    fn priority_is_strictly_respected() {
        let records = vec![
            rec("p20-heavy", 20, 65535),
            rec("p10-zero", 10, 0),
            rec("p30", 30, 1),
            rec("p10-light", 10, 1),
            rec("p20-light", 20, 1),
        ];
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..2_000 {
            let ordered = rfc2782_order(records.clone(), &mut rng);
            let priorities: Vec<u16> = ordered.iter().map(|r| r.priority).collect();
            assert_eq!(priorities, vec![10, 10, 20, 20, 30]);
        }
    }

    #[test]
    fn zero_weight_has_a_small_chance_beside_positive_weights() {
        // With weights 0 and 99 the zero-weight record comes first in 1 of 100 draws.
        let records = [rec("zero", 5, 0), rec("ninety-nine", 5, 99)];
        let share = first_share(&records, "zero", 10_000, 21);
        assert!((share - 0.01).abs() < 0.005, "zero first in {share}");
        // ... and it is never lost: every ordering holds both.
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..100 {
            let mut got = names(&rfc2782_order(records.to_vec(), &mut rng));
            got.sort_unstable();
            assert_eq!(got, vec!["ninety-nine", "zero"]);
        }
    }

    #[test]
    fn several_zero_weights_share_their_small_chance_evenly() {
        // Weights 0, 0, 2: each zero comes first with chance 1/3 * 1/2 = 1/6.
        let records = [rec("z1", 1, 0), rec("z2", 1, 0), rec("two", 1, 2)];
        for (name, expected) in [("z1", 1.0 / 6.0), ("z2", 1.0 / 6.0), ("two", 2.0 / 3.0)] {
            let share = first_share(&records, name, 10_000, 13);
            assert!((share - expected).abs() < 0.02, "{name} first in {share}");
        }
    }

    #[test]
    fn zero_weights_alone_are_all_equally_likely() {
        let records = [
            rec("a", 1, 0),
            rec("b", 1, 0),
            rec("c", 1, 0),
            rec("d", 1, 0),
        ];
        for name in ["a", "b", "c", "d"] {
            let share = first_share(&records, name, 10_000, 5);
            assert!((share - 0.25).abs() < 0.02, "{name} first in {share}");
        }
    }

    #[test]
    fn a_fixed_seed_gives_a_fixed_order() {
        let records = vec![
            rec("a", 1, 1),
            rec("b", 1, 1),
            rec("c", 1, 1),
            rec("d", 2, 0),
        ];
        let first = rfc2782_order(records.clone(), &mut StdRng::seed_from_u64(99));
        let again = rfc2782_order(records, &mut StdRng::seed_from_u64(99));
        assert_eq!(first, again);
    }

    #[test]
    fn empty_and_single_inputs() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(rfc2782_order(Vec::<Rec>::new(), &mut rng).is_empty());
        let one = vec![rec("only", 0, 0)];
        assert_eq!(rfc2782_order(one.clone(), &mut rng), one);
    }

    #[test]
    fn extreme_weights_do_not_overflow() {
        let records: Vec<Rec> = (0..100).map(|_| rec("w", 1, u16::MAX)).collect();
        let ordered = rfc2782_order(records, &mut StdRng::seed_from_u64(2));
        assert_eq!(ordered.len(), 100);
    }
}
