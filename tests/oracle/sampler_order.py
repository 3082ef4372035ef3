"""A second implementation of framework/data/sampler.cpp's epoch_permutation (SplitMix64 and an
unbiased Fisher-Yates), in Python: the order in which `angle train` visits one training set in an
epoch. The side-by-side benchmarks feed angle-emb its data in this order (sequential sampling), so
that both sides train on the same batches. Unit test sampler/epoch_permutation_golden holds the C++
side to GOLDEN, and this module checks itself against it on import."""
MASK = (1 << 64) - 1


def epoch_permutation(size, seed, epoch=0):
    """Positions 0..size-1 in the order of epoch `epoch` of a single training set, seed `seed`."""
    state = (seed * 0x2545f4914f6cdd1d + epoch + 1) & MASK

    def below(bound):  # SplitMix64 draws, rejection for an unbiased value in [0, bound)
        nonlocal state
        limit = MASK - MASK % bound
        while True:
            state = (state + 0x9e3779b97f4a7c15) & MASK
            z = state
            z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK
            z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK
            z ^= z >> 31
            if z < limit:
                return z % bound

    order = list(range(size))
    for i in range(size, 1, -1):
        j = below(i)
        order[i - 1], order[j] = order[j], order[i - 1]
    return order


GOLDEN = {(12, 42, 0): [10, 7, 6, 11, 1, 4, 5, 8, 0, 3, 2, 9], (12, 42, 1): [9, 5, 2, 4, 7, 8, 6, 11, 10, 0, 1, 3],
          (7, 0, 0): [5, 6, 4, 3, 0, 1, 2]}
for _args, _order in GOLDEN.items():
    assert epoch_permutation(*_args) == _order, f'epoch_permutation{_args} differs from the C++ golden'
