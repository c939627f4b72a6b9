"""Make tiny random-weight checkpoints of each supported family with the installed `transformers`
(seeded, nothing downloaded) and record what transformers computes on them: logits for fixed ids,
greedy continuations, sequence-classification scores, and the modules PEFT targets with
`all-linear`. Run where torch + transformers exist:  python3 scripts/device/hf_family_fixtures.py OUT
"""
import json, os, sys
out = sys.argv[1] if len(sys.argv) > 1 else 'hf_fixtures'
os.makedirs(out, exist_ok=True)
info = {}
try:
    import torch, transformers
    info['torch'] = torch.__version__; info['transformers'] = transformers.__version__
except Exception as e:  # noqa
    info['error'] = repr(e); json.dump(info, open(f'{out}/versions.json', 'w')); print(info); sys.exit(0)
try:
    import peft; info['peft'] = peft.__version__
except Exception as e:
    peft = None; info['peft'] = repr(e)
try:
    import trl; info['trl'] = trl.__version__
except Exception as e:
    info['trl'] = repr(e)
print(info, flush=True)
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

base = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            rms_norm_eps=1e-6, tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2)
V5 = int(transformers.__version__.split('.')[0]) >= 5
def rope(theta, scaling=None):
    if V5:
        p = {'rope_type': 'default', 'rope_theta': theta}
        if scaling: p.update(scaling)
        return {'rope_parameters': p}
    d = {'rope_theta': theta}
    if scaling: d['rope_scaling'] = scaling
    return d
variants = {
  'llama_default': ('llama', {**rope(10000.0)}),
  'llama_llama3': ('llama', {**rope(500000.0, {'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0,
                     'high_freq_factor': 4.0, 'original_max_position_embeddings': 16}), 'tie_word_embeddings': True}),
  'llama_linear': ('llama', {**rope(10000.0, {'rope_type': 'linear', 'factor': 4.0})}),
  'llama_headdim_bias': ('llama', {**rope(10000.0), 'head_dim': 16, 'attention_bias': True, 'mlp_bias': True}),
  'qwen2': ('qwen2', {**rope(1000000.0), 'use_sliding_window': False, 'tie_word_embeddings': True}),
  'qwen3': ('qwen3', {**rope(1000000.0), 'head_dim': 16}),
  'mistral_window': ('mistral', {**rope(10000.0), 'sliding_window': 5}),
}
g = torch.Generator().manual_seed(0)
ids = torch.randint(3, 96, (2, 12), generator=g)
results = {}
for name, (mt, extra) in variants.items():
    try:
        torch.manual_seed(1234)
        cfg = AutoConfig.for_model(mt, **{**base, **extra})
        cfg._attn_implementation = 'eager'
        m = AutoModelForCausalLM.from_config(cfg, attn_implementation='eager').eval()
        with torch.no_grad():
            for p in m.parameters():  # larger weights so logits are not flat
                p.normal_(0, 0.2, generator=g) if p.dim() > 1 else p.add_(torch.randn(p.shape, generator=g) * 0.1)
        d = f'{out}/{name}'; m.save_pretrained(d)
        r = {'model_type': mt, 'input_ids': ids.tolist()}
        with torch.no_grad():
            r['logits'] = m(ids).logits.double().tolist()
            gen = m.generate(ids[:1], max_new_tokens=20, do_sample=False, min_new_tokens=20, eos_token_id=None, pad_token_id=0)
            r['greedy'] = gen[0, 12:].tolist()
        sc = AutoModelForSequenceClassification.from_config(AutoConfig.for_model(mt, **{**base, **extra}, num_labels=1), attn_implementation='eager').eval()
        sd = {k: v for k, v in m.state_dict().items() if not k.startswith('lm_head')}
        sc.load_state_dict(sd, strict=False)
        with torch.no_grad():
            sc.score.weight.normal_(0, 0.3, generator=g)
            pad_ids = ids.clone(); pad_ids[1, 9:] = 0  # right-padded second row
            r['seqcls_input_ids'] = pad_ids.tolist()
            r['seqcls_scores'] = sc(pad_ids).logits.double().view(-1).tolist()
        sc.save_pretrained(f'{out}/{name}_seqcls')
        if peft is not None:
            from peft import LoraConfig, get_peft_model
            pm = get_peft_model(AutoModelForCausalLM.from_config(cfg), LoraConfig(r=4, lora_alpha=8, target_modules='all-linear'))
            r['peft_all_linear_targets'] = sorted(pm.peft_config['default'].target_modules)
            pm.save_pretrained(f'{out}/{name}_lora')
        results[name] = r
        print(name, 'ok', r['greedy'][:8], flush=True)
    except Exception as e:
        import traceback; traceback.print_exc(); results[name] = {'error': repr(e)}
json.dump({'versions': info, 'results': results}, open(f'{out}/reference.json', 'w'))
