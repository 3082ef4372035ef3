#!/usr/bin/env python3
"""Golden Matryoshka losses and gradients from sentence-transformers' MatryoshkaLoss around CoSENTLoss
(format A pairs with graded labels) and MultipleNegativesRankingLoss (format B pairs, format C
triplets), for random float64 embeddings, several dims and weights (uneven weights, a dim equal to
the width and one not). The embeddings are handed to the losses through a stand-in model whose
forward returns them, so the comparison tests the loss, not an encoder. Written as safetensors with
the case list in the metadata; tests/oracle/test_matryoshka_reference.cpp compares ours (the
AnglE objective with only the matching term on: cosine_w 1 for CoSENT, the contrastive term for
MNRL)."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import script_args  # noqa: E402

CASES = [  # (format, inner loss, width, dims, weights, batch)
    ('A', 'cosent', 16, [16, 8, 4], [1.0, 1.0, 1.0], 6),
    ('A', 'cosent', 16, [12, 6, 2], [1.0, 0.5, 2.0], 7),
    ('B', 'mnrl', 16, [16, 8, 4], [1.0, 1.0, 1.0], 5),
    ('B', 'mnrl', 12, [10, 4], [0.25, 3.0], 8),
    ('C', 'mnrl', 16, [16, 8, 4], [1.0, 1.0, 1.0], 5),
    ('C', 'mnrl', 16, [8, 6], [1.0, 0.5], 4),
]


def main():
    args = script_args(__doc__, '--out')
    import torch
    from safetensors.torch import save_file
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss, MatryoshkaLoss, MultipleNegativesRankingLoss

    class GivenEmbeddings(torch.nn.Module):
        """A model whose 'sentence_embedding' is the tensor its features carry."""

        def __init__(self, width):
            super().__init__()
            self.width = width

        def forward(self, features):
            return {'sentence_embedding': features['given']}

        def get_embedding_dimension(self):
            return self.width

    g = torch.Generator().manual_seed(2026)
    tensors, cases = {}, []
    for fmt, inner, width, dims, weights, batch in CASES:
        columns = {'A': 2, 'B': 2, 'C': 3}[fmt]
        # the loss's interleaved rows: [t1, t2] per pair, [q, p] or [q, p, n] per example
        emb = torch.randn(batch * columns, width, generator=g, dtype=torch.float64)
        labels = (torch.randint(0, 11, (batch,), generator=g).double() / 2) if fmt == 'A' else torch.zeros(batch, dtype=torch.float64)
        x = emb.clone().requires_grad_(True)
        model = GivenEmbeddings(width)
        base = CoSENTLoss(model, scale=20.0) if inner == 'cosent' else MultipleNegativesRankingLoss(model, scale=20.0)
        loss_fn = MatryoshkaLoss(model, base, matryoshka_dims=dims, matryoshka_weights=weights)
        features = [{'given': x[c::columns]} for c in range(columns)]
        loss = loss_fn(features, labels)
        loss.backward()
        name = f'case{len(cases)}'
        tensors[f'{name}.embeddings'] = emb
        tensors[f'{name}.labels'] = labels
        tensors[f'{name}.loss'] = loss.detach().reshape(1).double()
        tensors[f'{name}.grad'] = x.grad.double()
        cases.append({'name': name, 'format': fmt, 'inner': inner, 'dims': dims, 'weights': weights, 'batch': batch})
    import sentence_transformers
    save_file(tensors, args.out, metadata={'cases': json.dumps(cases), 'sentence_transformers': sentence_transformers.__version__})
    print(f'{len(cases)} cases -> {args.out}')


if __name__ == '__main__':
    main()
