#!/usr/bin/env python3
"""Golden loss values and gradients from angle-emb v0.6.1 (AngleLoss and its loss functions) for
random embeddings and labels: every format (A, B, C) x preset x label mode, with ties, duplicate
texts (identical rows), all-zero labels, 0/1 labels, graded labels and odd batch sizes. Computed
in float64 so that the comparison tests the formulas, not rounding. Written as safetensors with
the case list in the metadata; tests/oracle/test_loss_reference.cpp compares ours."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from common import script_args  # noqa: E402

PRESETS = {  # the weight presets of ../shared/reference/angle-reference.md §1.6
    'current': dict(cosine_w=0.0, ibn_w=1.0, cln_w=1.0, angle_w=0.02, cosine_tau=20.0, ibn_tau=20.0, angle_tau=20.0),
    'v0.4.6-cli': dict(cosine_w=0.0, ibn_w=30.0, cln_w=0.0, angle_w=1.0, cosine_tau=20.0, ibn_tau=20.0, angle_tau=20.0),
    'paper': dict(cosine_w=1.0, ibn_w=35.0, cln_w=0.0, angle_w=1.0, cosine_tau=20.0, ibn_tau=20.0, angle_tau=1.0),
    # the README STS-B recipe: every term on
    'stsb-recipe': dict(cosine_w=1.0, ibn_w=1.0, cln_w=1.0, angle_w=0.02, cosine_tau=20.0, ibn_tau=20.0, angle_tau=20.0),
}


def label_sets(torch, g):
    """name -> labels for B pairs."""
    return {
        'graded-ties': lambda b: (torch.randint(0, 11, (b,), generator=g).double() / 2),  # 0..5 step .5
        'binary': lambda b: torch.randint(0, 2, (b,), generator=g).double(),
        'all-zero': lambda b: torch.zeros(b, dtype=torch.float64),
        'unit-interval': lambda b: torch.rand(b, generator=g, dtype=torch.float64),
    }


def main():
    args = script_args(__doc__, '--out')
    import torch
    from angle_emb.angle import AngleLoss
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(1234)
    tensors, cases = {}, []
    dim = 8
    for preset, weights in PRESETS.items():
        for label_mode in ('float', 'legacy-int'):
            for fmt in ('A', 'B', 'C'):
                for batch in (3, 4, 7):
                    for labels_name, make in label_sets(torch, g).items():
                        if fmt != 'A' and labels_name != 'binary':
                            continue  # labels only matter for format A
                        for duplicates in (False, True):
                            rows = batch * {'A': 2, 'B': 2, 'C': 3}[fmt]
                            emb = torch.randn(rows, dim, generator=g, dtype=torch.float64)
                            if duplicates:  # the same text twice: identical rows, including text1 == text2
                                emb[1] = emb[0]
                                emb[-1] = emb[2]
                            labels = make(batch)
                            ref_labels = labels.trunc() if label_mode == 'legacy-int' else labels
                            x = emb.clone().requires_grad_(True)
                            loss_fn = AngleLoss(**weights, dataset_format=fmt)
                            loss = loss_fn(ref_labels.repeat_interleave(2).unsqueeze(1), x)
                            loss = loss if torch.is_tensor(loss) else torch.tensor(float(loss), dtype=torch.float64)
                            if loss.requires_grad:
                                loss.backward()
                            grad = x.grad if x.grad is not None else torch.zeros_like(emb)
                            name = f'case{len(cases)}'
                            tensors[f'{name}.embeddings'] = emb
                            tensors[f'{name}.labels'] = labels
                            tensors[f'{name}.loss'] = loss.detach().reshape(1).double()
                            tensors[f'{name}.grad'] = grad.double()
                            cases.append({'name': name, 'preset': preset, 'label_mode': label_mode, 'format': fmt,
                                          'batch': batch, 'labels': labels_name, 'duplicates': duplicates,
                                          'weights': weights})
    save_file(tensors, args.out, metadata={'cases': json.dumps(cases), 'angle_emb': '0.6.1'})
    print(f'{len(cases)} cases -> {args.out}')


if __name__ == '__main__':
    main()
