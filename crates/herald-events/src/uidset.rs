//! UID sets: the IMAP `sequence-set` syntax (RFC 3501 §9) restricted to concrete UIDs, as the
//! `uidset` parameter carries them.
//!
//! A set is kept as sorted, disjoint, non-adjacent ranges, so that equal sets have one printed
//! form (`1:3,5,9:12`) and a set built from 100,000 scattered UIDs costs one sort, never a
//! quadratic merge. `*` is refused: an event names UIDs that existed when it was generated, and
//! "the largest UID" means nothing to a consumer reading it later.

use std::fmt;
use std::str::FromStr;

/// Why a UID set did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidSetError {
    /// The text was empty (a sequence-set has at least one element).
    #[error("empty UID set")]
    Empty,
    /// `0` is not a UID.
    #[error("UID 0 is not allowed")]
    Zero,
    /// `*` does not name a concrete UID.
    #[error("`*` is not allowed in an event's UID set")]
    Star,
    /// A number does not fit in 32 bits or has a leading zero.
    #[error("bad UID number `{0}`")]
    BadNumber(String),
    /// An element is not `n` or `n:m`.
    #[error("malformed element `{0}`")]
    Malformed(String),
}

/// A non-empty set of UIDs (an empty value exists only as `UidSet::default()`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UidSet {
    /// Sorted, disjoint, non-adjacent inclusive ranges.
    ranges: Vec<(u32, u32)>,
}

impl UidSet {
    /// The set holding one UID.
    pub fn single(uid: u32) -> UidSet {
        debug_assert!(uid > 0, "UID 0 does not exist");
        UidSet {
            ranges: vec![(uid, uid)],
        }
    }

    /// Builds a set from ranges in any order, overlapping or reversed (`9:5` is `5:9`).
    /// Ranges that touch 0 are clipped to start at 1.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u32, u32)>) -> UidSet {
        let mut v: Vec<(u32, u32)> = ranges
            .into_iter()
            .map(|(a, b)| (a.min(b).max(1), a.max(b)))
            .filter(|&(a, b)| b >= 1 && a <= b)
            .collect();
        v.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        UidSet { ranges: merged }
    }

    /// Builds a set from UIDs in any order; duplicates and 0 are ignored.
    pub fn from_uids(uids: impl IntoIterator<Item = u32>) -> UidSet {
        UidSet::from_ranges(uids.into_iter().filter(|&u| u > 0).map(|u| (u, u)))
    }

    /// The canonical ranges, ascending.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// True when the set holds no UID.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many UIDs the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    /// True when `uid` is in the set (binary search over the ranges).
    pub fn contains(&self, uid: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, b)| b < uid);
        self.ranges.get(i).is_some_and(|&(a, _)| a <= uid)
    }

    /// Every UID, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }

    /// The smallest and largest UID.
    pub fn bounds(&self) -> Option<(u32, u32)> {
        Some((self.ranges.first()?.0, self.ranges.last()?.1))
    }
}

fn parse_uid(s: &str) -> Result<u32, UidSetError> {
    if s == "*" {
        return Err(UidSetError::Star);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UidSetError::Malformed(s.to_owned()));
    }
    if s == "0" {
        return Err(UidSetError::Zero);
    }
    if s.starts_with('0') {
        return Err(UidSetError::BadNumber(s.to_owned()));
    }
    s.parse::<u32>()
        .map_err(|_| UidSetError::BadNumber(s.to_owned()))
}

impl FromStr for UidSet {
    type Err = UidSetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(UidSetError::Empty);
        }
        let mut ranges = Vec::new();
        for element in s.split(',') {
            let range = match element.split_once(':') {
                Some((a, b)) => (parse_uid(a)?, parse_uid(b)?),
                None => {
                    let u = parse_uid(element)?;
                    (u, u)
                }
            };
            ranges.push(range);
        }
        Ok(UidSet::from_ranges(ranges))
    }
}

impl fmt::Display for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}:{b}")?;
            }
        }
        Ok(())
    }
}

impl FromIterator<u32> for UidSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        UidSet::from_uids(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prints_compressed_and_canonical() {
        let s: UidSet = "9:12,5,3:1,2,10".parse().unwrap();
        assert_eq!(s.to_string(), "1:3,5,9:12");
        assert_eq!(s.len(), 8);
        assert!(s.contains(11) && !s.contains(4) && !s.contains(13));
        assert_eq!(UidSet::from_uids([4, 1, 2, 3, 7]).to_string(), "1:4,7");
    }

    #[test]
    fn rejects_what_an_event_cannot_mean() {
        assert_eq!("".parse::<UidSet>(), Err(UidSetError::Empty));
        assert_eq!("0".parse::<UidSet>(), Err(UidSetError::Zero));
        assert_eq!("1:0".parse::<UidSet>(), Err(UidSetError::Zero));
        assert_eq!("1:*".parse::<UidSet>(), Err(UidSetError::Star));
        assert_eq!("*".parse::<UidSet>(), Err(UidSetError::Star));
        assert!(matches!(
            "1,,2".parse::<UidSet>(),
            Err(UidSetError::Malformed(_))
        ));
        assert!(matches!(
            "1:2:3".parse::<UidSet>(),
            Err(UidSetError::Malformed(_))
        ));
        assert!(matches!(
            " 1".parse::<UidSet>(),
            Err(UidSetError::Malformed(_))
        ));
        assert!(matches!(
            "4294967296".parse::<UidSet>(),
            Err(UidSetError::BadNumber(_))
        ));
        assert!(matches!(
            "07".parse::<UidSet>(),
            Err(UidSetError::BadNumber(_))
        ));
        assert_eq!(
            "4294967295".parse::<UidSet>().unwrap().to_string(),
            "4294967295"
        );
    }

    #[test]
    fn hundred_thousand_scattered_uids() {
        // Every other UID: 100,000 single-UID ranges, the worst case for compression.
        let uids: Vec<u32> = (0..100_000u32).rev().map(|i| i * 2 + 1).collect();
        let set = UidSet::from_uids(uids);
        assert_eq!(set.len(), 100_000);
        assert_eq!(set.ranges().len(), 100_000);
        let text = set.to_string();
        let back: UidSet = text.parse().unwrap();
        assert_eq!(back, set);
        assert!(back.contains(199_999) && !back.contains(200_000));
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(uids in proptest::collection::vec(1u32.., 1..200)) {
            let set = UidSet::from_uids(uids.iter().copied());
            let text = set.to_string();
            let back: UidSet = text.parse().unwrap();
            prop_assert_eq!(&back, &set);
            prop_assert_eq!(back.to_string(), text);
            for u in uids {
                prop_assert!(set.contains(u));
            }
        }

        #[test]
        fn ranges_are_canonical(ranges in proptest::collection::vec((1u32..1000, 1u32..1000), 1..50)) {
            let set = UidSet::from_ranges(ranges.iter().copied());
            for w in set.ranges().windows(2) {
                // Disjoint and not adjacent: otherwise the print would not be canonical.
                prop_assert!(w[0].1 + 1 < w[1].0);
            }
            let expected: std::collections::BTreeSet<u32> =
                ranges.iter().flat_map(|&(a, b)| a.min(b)..=a.max(b)).collect();
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), expected.into_iter().collect::<Vec<_>>());
        }
    }
}
