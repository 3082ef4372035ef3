"""BiLLM's attention change (github.com/WhereIsAI/BiLLM, billm 0.1.6, which angle-emb 0.6.1
imports for apply_billm=True), applied with hooks to a transformers / peft model: the `billm`
package itself imports names that transformers 5 no longer has (add_start_docstrings), so it
cannot run beside our pinned transformers 5.3.0.

What BiLLM does (its Bi<Model>Model.forward): the layers whose index is >= BiLLM_START_INDEX
(0-based; the env var, read when billm is imported; -1 disables it) get
`bi_attention_mask = torch.zeros_like(causal_mask)` instead of the causal mask; every other
layer, the position ids (0..T-1 as without BiLLM), the rotary tables and the final norm are
unchanged. An all-zero additive mask attends to every key, padding included.

install(model, k, mode):
  mode 'billm': exactly that (all-zero mask from layer k on);
  mode 'keys':  the same layers see every real key and no padding key (model/decoder.h's rule);
                on an unpadded batch the two are identical."""
import torch

_active = {'mask': None, 'calls': 0}


def _layers(model):
    for name, module in model.named_modules():
        if name.endswith('layers') and isinstance(module, torch.nn.ModuleList):
            return module
    raise SystemExit('no decoder layers found')


def install(model, k, mode):
    assert mode in ('billm', 'keys')

    def capture(module, args, kwargs):  # the 2D padding mask the model is called with
        _active['mask'] = kwargs.get('attention_mask')

    def both_ways(module, args, kwargs):
        hidden = kwargs.get('hidden_states', args[0] if args else None)
        batch, length = hidden.shape[:2]
        additive = torch.zeros(batch, 1, length, length, dtype=hidden.dtype, device=hidden.device)
        if mode == 'keys' and _active['mask'] is not None:
            pad = (_active['mask'] == 0)[:, None, None, :].expand(batch, 1, length, length)
            additive = additive.masked_fill(pad, torch.finfo(hidden.dtype).min)
        kwargs['attention_mask'] = additive
        _active['calls'] += 1
        return args, kwargs

    layers = _layers(model)
    inner = next(m for m in model.modules() if getattr(m, 'layers', None) is layers)
    inner.register_forward_pre_hook(capture, with_kwargs=True)
    for index, layer in enumerate(layers):
        if index >= k:
            layer.register_forward_pre_hook(both_ways, with_kwargs=True)


def calls():
    return _active['calls']


def embeddings(base, adapter, texts, k, prompt=None, pooling='last'):
    """Embeddings as angle-emb pools them (Pooler 'last' or 'avg') of transformers (+ peft) in fp32
    with BiLLM from layer k (None: causal), each text alone (no padding: BiLLM's own result)."""
    import numpy as np
    from angle_emb.angle import Pooler
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32, attn_implementation='eager')
    if adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    if k is not None:
        install(model, k, 'billm')
    tok = AutoTokenizer.from_pretrained(str(base))
    if tok.pad_token_id is None:
        tok.pad_token_id = 0
    pooler = Pooler(model, pooling_strategy=pooling, padding_side=tok.padding_side)
    out = []
    with torch.no_grad():
        for text in texts:
            batch = tok([prompt.format(text=text) if prompt else text], return_tensors='pt')
            out.append(pooler({'input_ids': batch['input_ids'], 'attention_mask': batch['attention_mask']}).numpy())
    return np.concatenate(out)
