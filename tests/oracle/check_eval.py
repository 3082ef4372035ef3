#!/usr/bin/env python3
"""`angle eval --json` on STS-B test against sentence-transformers: the same model and pooling in
fp32, cosine similarity, scipy's Spearman x 100. They must agree within 0.01."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import run, script_args, stsb_pairs  # noqa: E402


def main():
    args = script_args(__doc__, '--angle', '--model', '--stsb')
    import numpy as np
    from scipy.stats import pearsonr, spearmanr
    from sentence_transformers import SentenceTransformer

    ours = json.loads(run([args.angle, 'eval', '--model', args.model, '--data', f'stsb:{args.stsb}', '--json',
                           '--quiet']).splitlines()[0])
    a, b, gold = stsb_pairs(args.stsb)
    st = SentenceTransformer(args.model, device='cpu')
    ea, eb = st.encode(a, convert_to_numpy=True), st.encode(b, convert_to_numpy=True)
    cos = (ea * eb).sum(1) / np.linalg.norm(ea, axis=1) / np.linalg.norm(eb, axis=1)
    spearman, pearson = 100 * spearmanr(cos, gold).statistic, 100 * pearsonr(cos, gold).statistic
    print(f"STS-B test n={ours['n']}: angle spearman {ours['spearman']:.4f} pearson {ours['pearson']:.4f} | "
          f"sentence-transformers spearman {spearman:.4f} pearson {pearson:.4f}")
    if ours['n'] != len(gold) or set(ours) < {'dataset', 'n', 'spearman', 'pearson'}:
        sys.exit(f'unexpected JSON: {ours}')
    if abs(ours['spearman'] - spearman) > 0.01:
        sys.exit(f"Spearman differs by {abs(ours['spearman'] - spearman):.4f} > 0.01")


if __name__ == '__main__':
    main()
