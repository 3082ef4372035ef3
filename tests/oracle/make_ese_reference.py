#!/usr/bin/env python3
"""Golden Espresso (ESE) losses and gradients from angle-emb v0.6.1's AngleESETrainer.compute_loss, for
random float64 pooled hidden states of L = 2, 3 and 4 layers (plus the embeddings' output), formats A,
B and C, several compression sizes and KL temperatures, PCA on and off. The trainer's pooler is a
stand-in that returns the given states (one token each, cls pooling), so the comparison tests the
loss, not an encoder. torch.svd_lowrank (randomised) is replaced by the exact SVD's leading k
triplets, which it approximates. Written as safetensors with the case list in the metadata;
tests/oracle/test_ese_reference.cpp compares ours (loss/espresso.h)."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import script_args  # noqa: E402

CASES = [  # (format, layers L, width, k, T, pca, batch, weights)
    ('A', 2, 16, 8, 1.0, True, 6, 'current'),
    ('A', 4, 16, 6, 2.0, True, 7, 'stsb-recipe'),
    ('A', 3, 12, 4, 0.0, True, 5, 'current'),
    ('A', 3, 12, 4, 1.0, False, 5, 'current'),
    ('B', 3, 16, 8, 1.0, True, 6, 'current'),
    ('C', 2, 16, 8, 1.0, True, 5, 'current'),
    ('C', 4, 8, 4, 0.5, True, 4, 'stsb-recipe'),
]
WEIGHTS = {
    'current': dict(cosine_w=0.0, ibn_w=1.0, cln_w=1.0, angle_w=0.02, cosine_tau=20.0, ibn_tau=20.0, angle_tau=20.0),
    'stsb-recipe': dict(cosine_w=1.0, ibn_w=1.0, cln_w=1.0, angle_w=0.02, cosine_tau=20.0, ibn_tau=20.0, angle_tau=20.0),
}


def main():
    args = script_args(__doc__, '--out')
    import torch
    from angle_emb.angle import AngleESETrainer, AngleLoss
    from safetensors.torch import save_file

    def exact_svd_lowrank(a, q=6, niter=2, M=None):
        u, s, vh = torch.linalg.svd(a, full_matrices=False)
        return u[:, :q], s[:q], vh.mT[:, :q]

    torch.svd_lowrank = exact_svd_lowrank  # angle_emb calls torch.svd_lowrank(A, q=k)

    class GivenStates:
        pooling_strategy, padding_side = 'cls', 'right'

        def __init__(self, states):
            self.states = states

        def __call__(self, inputs, layer_index=-1, return_all_layer_outputs=False):
            return [s.unsqueeze(1) for s in self.states]  # [rows, 1 token, H] per hidden state

    g = torch.Generator().manual_seed(31)
    tensors, cases = {}, []
    for fmt, layers, width, k, temperature, pca, batch, weights in CASES:
        rows = batch * {'A': 2, 'B': 2, 'C': 3}[fmt]
        states = torch.randn(layers + 1, rows, width, generator=g, dtype=torch.float64)
        labels = torch.randint(0, 11, (batch,), generator=g).double() / 2
        x = states.clone().requires_grad_(True)
        trainer = object.__new__(AngleESETrainer)  # the loss methods only; no HF Trainer behind it
        trainer.loss_fct = AngleLoss(**WEIGHTS[weights], dataset_format=fmt)
        trainer.ese_compression_size, trainer.ese_kl_temperature, trainer.apply_ese_pca = k, temperature, pca
        trainer.n_layers, trainer.teacher_name_or_path = layers, None
        trainer.pooler = GivenStates(list(x.unbind(0)))
        loss = trainer.compute_loss(None, {'labels': labels.repeat_interleave(2).unsqueeze(1)})
        loss.backward()
        name = f'case{len(cases)}'
        tensors[f'{name}.states'] = states
        tensors[f'{name}.labels'] = labels
        tensors[f'{name}.loss'] = loss.detach().reshape(1).double()
        tensors[f'{name}.grad'] = x.grad.double()
        cases.append({'name': name, 'format': fmt, 'layers': layers, 'width': width, 'k': k, 'kl_temperature': temperature,
                      'pca': pca, 'batch': batch, 'weights': WEIGHTS[weights]})
    save_file(tensors, args.out, metadata={'cases': json.dumps(cases), 'angle_emb': '0.6.1'})
    print(f'{len(cases)} cases -> {args.out}')


if __name__ == '__main__':
    main()
