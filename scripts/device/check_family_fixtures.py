"""Cross-check the repo's hand-made family fixtures with transformers itself, where torch +
transformers are installed (the device machine; nothing is downloaded):
  1. test/fixtures/families_ref/<variant>/ (written by scripts/llama_reference.py, numpy float64):
     transformers must give the same logits on the tokens of the left-padded batch (within 1e-4,
     position ids = cumsum(mask) - 1 as generation derives them) and the same greedy tokens
     (full-forward argmax, 8 steps per prompt).
  2. test/fixtures/tokenizers-families/<family>/ (written by scripts/family_tokenizers.py):
     AutoTokenizer must encode the texts to expected.json's ids and apply_chat_template must render
     what test/tokenizer/families.test.ts pins.
Usage: python3 scripts/device/check_family_fixtures.py OUT   → OUT/check.json; exit 1 on a mismatch.
"""
import json, os, sys

out = sys.argv[1] if len(sys.argv) > 1 else 'family_check'
os.makedirs(out, exist_ok=True)
root = os.path.join(os.path.dirname(__file__), '..', '..', 'test', 'fixtures')
report = {'models': {}, 'tokenizers': {}}
ok = True
try:
    import torch, transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    report['versions'] = {'torch': torch.__version__, 'transformers': transformers.__version__}
except Exception as e:  # noqa
    report['error'] = repr(e)
    json.dump(report, open(f'{out}/check.json', 'w'), indent=1)
    print(report)
    sys.exit(1)

for name in sorted(os.listdir(os.path.join(root, 'families_ref'))):
    d = os.path.join(root, 'families_ref', name)
    ex = json.load(open(os.path.join(d, 'expected.json')))
    try:
        m = AutoModelForCausalLM.from_pretrained(d, attn_implementation='eager', dtype=torch.float32).eval()
        ids = torch.tensor(ex['input_ids'])
        mask = torch.tensor(ex['attention_mask'])
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = m(input_ids=ids, attention_mask=mask, position_ids=pos).logits.double()
        want = torch.tensor(ex['logits'], dtype=torch.float64)
        on = mask.bool()
        worst = (logits - want).abs()[on].max().item()
        greedy = []
        for p in ex['greedy_prompts']:
            seq = list(p)
            for _ in range(len(ex['greedy'][0])):
                with torch.no_grad():
                    seq.append(int(m(input_ids=torch.tensor([seq])).logits[0, -1].argmax()))
            greedy.append(seq[len(p):])
        r = {'max_abs_logit_diff': worst, 'greedy_equal': greedy == ex['greedy'], 'greedy': greedy}
        ok &= worst < 1e-4 and greedy == ex['greedy']
    except Exception as e:  # noqa
        r = {'error': repr(e)}
        ok = False
    report['models'][name] = r
    print(name, r, flush=True)

CHAT = {
    'llama3': '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    'qwen2': '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    'smollm2': '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
}
for family, chat in CHAT.items():
    d = os.path.join(root, 'tokenizers-families', family)
    ex = json.load(open(os.path.join(d, 'expected.json')))
    try:
        tok = AutoTokenizer.from_pretrained(d)
        ids = [tok.encode(t, add_special_tokens=False) for t in ex['texts']]
        ids_sp = [tok.encode(t, add_special_tokens=True) for t in ex['texts']]
        rendered = tok.apply_chat_template([{'role': 'user', 'content': 'Hi'}], tokenize=False, add_generation_prompt=True)
        r = {'ids_equal': ids == ex['ids'], 'ids_with_special_equal': ids_sp == ex['ids_with_special_tokens'],
             'chat_equal': rendered == chat, 'eos': tok.eos_token, 'pad': tok.pad_token, 'bos': tok.bos_token}
        if not r['ids_equal']:
            r['ids'] = ids
        if not r['chat_equal']:
            r['rendered'] = rendered
        ok &= r['ids_equal'] and r['ids_with_special_equal'] and r['chat_equal']
    except Exception as e:  # noqa
        r = {'error': repr(e)}
        ok = False
    report['tokenizers'][family] = r
    print(family, r, flush=True)

report['ok'] = ok
json.dump(report, open(f'{out}/check.json', 'w'), indent=1)
sys.exit(0 if ok else 1)
