//! The seeded order is pinned: golden values computed with the Python reference in `order`'s doc.

use train::order::{augment_rng, epoch_order, permutation, SplitMix64};

#[test]
fn splitmix64_golden() {
    let mut r = SplitMix64::new(0);
    assert_eq!(
        [r.next_u64(), r.next_u64(), r.next_u64()],
        [
            16294208416658607535,
            7960286522194355700,
            487617019471545679
        ]
    );
}

#[test]
fn shuffle_golden_first_indices() {
    assert_eq!(permutation(10, 0, 0), [9, 3, 1, 5, 2, 7, 6, 8, 0, 4]);
    assert_eq!(permutation(10, 42, 0), [8, 6, 3, 7, 4, 1, 2, 0, 9, 5]);
    assert_eq!(permutation(10, 42, 1), [1, 6, 8, 0, 7, 5, 4, 3, 9, 2]);
    assert_eq!(
        permutation(60_000, 42, 0)[..8],
        [46855, 26502, 20812, 36250, 11919, 12518, 43114, 23748]
    );
    assert_eq!(
        permutation(60_000, 42, 1)[..8],
        [1522, 14670, 55998, 47043, 25772, 12409, 130, 29272]
    );
}

#[test]
fn augment_stream_golden() {
    let mut r = augment_rng(42, 3, 17);
    assert_eq!((r.below(33), r.below(33), r.coin()), (9, 25, true));
}

#[test]
fn same_seed_same_order_and_epochs_differ() {
    assert_eq!(epoch_order(1000, 7, 2, true), epoch_order(1000, 7, 2, true));
    assert_ne!(epoch_order(1000, 7, 2, true), epoch_order(1000, 7, 3, true));
    assert_ne!(epoch_order(1000, 7, 2, true), epoch_order(1000, 8, 2, true));
    assert_eq!(epoch_order(5, 7, 2, false), [0, 1, 2, 3, 4]);
}
