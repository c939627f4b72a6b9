#!/usr/bin/env python3
"""Hand-made small tokenizers in the exact file formats of three model families, and the token ids
an independent encoder (this file: python `regex` + byte-level BPE by merge rank) computes for
fixed texts. Nothing is downloaded; the vocabularies are tiny, the structure is each family's:

  llama3/   Llama 3 (Meta-Llama-3-8B-Instruct / Llama-3.2-*-Instruct): byte-level BPE with
            `ignore_merges`, a Split pre-tokenizer with Llama 3's regex (digits in runs of 1-3,
            case-insensitive contractions), `<|begin_of_text|>` added by a TemplateProcessing
            post-processor, `<|eot_id|>` as eos_token and turn end, no pad token.
  qwen2/    Qwen2 / Qwen2.5-Instruct: NFC normalizer, Split with Qwen's regex (single digits),
            ByteLevel post-processor (no BOS: bos_token null), eos `<|im_end|>`, pad
            `<|endoftext|>`, ChatML template that adds a default system prompt.
  smollm2/  SmolLM2-Instruct: GPT-2 byte-level BPE after a Digits(individual) pre-tokenizer,
            specials first in the vocabulary, bos `<|im_start|>`, eos = pad = `<|im_end|>`,
            ChatML template with SmolLM's default system prompt.

Writes test/fixtures/tokenizers-families/<family>/{tokenizer.json, tokenizer_config.json,
expected.json}. Usage: python3 scripts/family_tokenizers.py [OUT_DIR]   (needs the `regex` module)
"""
import json
import os
import sys
import unicodedata

import regex

# GPT-2's byte <-> printable-character map (bytes_to_unicode), written from its definition.
def bytes_to_unicode():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return chars

B2U = bytes_to_unicode()

LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

# Merges (in rank order, as byte-level characters: Ġ = space, Ċ = newline) shared by the three
# vocabularies: enough for the chat headers, a few words, digit groups and a contraction.
MERGES = [
    "Ġ t", "h e", "Ġt he", "i n", "e r", "Ġ a", "o r", "l l", "Ċ Ċ", "Ġ Ġ",
    "u s", "us er", "s y", "s t", "sy st", "syst e", "syste m", "a s", "as s", "ass i", "assi st",
    "an t", "assist ant", "H e", "He ll", "Hell o", "Ġ w", "Ġw or", "l d", "1 2", "12 3",
    "' s", "' S", "Ġ c", "a f", "Ġc af",
]

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                   "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
QWEN2_ADDED = [("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True), ("<tool_call>", False), ("</tool_call>", False)]
SMOLLM2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>"]

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
QWEN25_TEMPLATE = (
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n"
    "    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        {%- if message.content %}\n"
    "            {{- '\\n' + message.content }}\n        {%- endif %}\n        {%- for tool_call in message.tool_calls %}\n"
    "            {%- if tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n            {{- '\", \"arguments\": ' }}\n"
    "            {{- tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n"
    "        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"
)
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI "
    "assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TEXTS = [
    "Hello world, the user's 12345 café!",
    "He'S assistant\n\nsystem  two   spaces\ttab 9876543210",
    "naïve ǅ 日本 👋🏽 e\u0301 é",  # a decomposed é first: Qwen's NFC composes it
    "<|im_start|>user\nHello<|im_end|>\n<|eot_id|>",
]


def added(i, content, special=True):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": special}


def bpe_vocab(first_id):
    """Bytes (in byte order), then one token per merge, then extra whole words (ignore_merges)."""
    vocab = {B2U[b]: first_id + b for b in range(256)}
    for m in MERGES:
        a, b = m.split(" ")
        vocab.setdefault(a + b, first_id + len(vocab))
    # Reachable by no merge ("Ġw"+"or" gives "Ġwor", "l"+"d" gives "ld", but nothing joins them):
    # only `ignore_merges` (Llama 3) emits it whole.
    vocab["Ġworld"] = first_id + len(vocab)
    return vocab


def bpe(word, ranks):
    symbols = list(word)
    while len(symbols) > 1:
        pairs = [(ranks.get(symbols[i] + " " + symbols[i + 1]), i) for i in range(len(symbols) - 1)]
        pairs = [p for p in pairs if p[0] is not None]
        if not pairs:
            break
        best = min(pairs)[0]
        out, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and ranks.get(symbols[i] + " " + symbols[i + 1]) == best:
                out.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out
    return symbols


def encode(text, spec, add_special_tokens):
    """Added tokens first (never split), then normalizer, pre-tokenizer, byte-level BPE."""
    vocab, ranks, added_ids = spec["vocab"], {m: i for i, m in enumerate(MERGES)}, spec["added_ids"]
    pieces = regex.split("(" + "|".join(regex.escape(t) for t in sorted(added_ids, key=len, reverse=True)) + ")", text)
    ids = []
    for piece in pieces:
        if piece == "":
            continue
        if piece in added_ids:
            ids.append(added_ids[piece])
            continue
        if spec["nfc"]:
            piece = unicodedata.normalize("NFC", piece)
        words = []
        if spec["family"] == "smollm2":
            for chunk in regex.findall(r"[^0-9]+|[0-9]", piece):
                words += regex.findall(GPT2_PATTERN, chunk)
        else:
            words = regex.findall(LLAMA3_PATTERN if spec["family"] == "llama3" else QWEN2_PATTERN, piece)
        for w in words:
            chars = "".join(B2U[b] for b in w.encode("utf-8"))
            if spec["ignore_merges"] and chars in vocab:
                ids.append(vocab[chars])
                continue
            ids += [vocab[s] for s in bpe(chars, ranks)]
    if add_special_tokens and spec["family"] == "llama3":
        ids = [added_ids["<|begin_of_text|>"]] + ids
    return ids


def byte_level(add_prefix_space, trim_offsets, use_regex):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": trim_offsets, "use_regex": use_regex}


def bpe_model(vocab, ignore_merges):
    return {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": False, "byte_fallback": False, "ignore_merges": ignore_merges, "vocab": vocab, "merges": MERGES}


def llama3():
    vocab = bpe_vocab(0)
    base = len(vocab)
    added_ids = {t: base + i for i, t in enumerate(LLAMA3_SPECIALS)}
    bot = added_ids["<|begin_of_text|>"]
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(i, t) for t, i in added_ids.items()],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
            byte_level(False, True, False)]},
        "post_processor": {"type": "Sequence", "processors": [
            byte_level(True, False, True),
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bot], "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": byte_level(True, True, True),
        "model": bpe_model(vocab, True),
    }
    cfg = {
        "added_tokens_decoder": {str(i): {k: v for k, v in added(i, t).items() if k != "id"} for t, i in added_ids.items()},
        "bos_token": "<|begin_of_text|>",
        "chat_template": LLAMA3_TEMPLATE,
        "clean_up_tokenization_spaces": True,
        "eos_token": "<|eot_id|>",
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    return tok, cfg, {"family": "llama3", "vocab": vocab, "added_ids": added_ids, "nfc": False, "ignore_merges": True}


def qwen2():
    vocab = bpe_vocab(0)
    base = len(vocab)
    added_ids = {t: base + i for i, (t, _) in enumerate(QWEN2_ADDED)}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(base + i, t, s) for i, (t, s) in enumerate(QWEN2_ADDED)],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
            byte_level(False, False, False)]},
        "post_processor": byte_level(False, False, False),
        "decoder": byte_level(False, False, False),
        "model": bpe_model(vocab, False),
    }
    cfg = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(base + i): {k: v for k, v in added(base + i, t, s).items() if k != "id"} for i, (t, s) in enumerate(QWEN2_ADDED)},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": QWEN25_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    return tok, cfg, {"family": "qwen2", "vocab": vocab, "added_ids": added_ids, "nfc": True, "ignore_merges": False}


def smollm2():
    n = len(SMOLLM2_SPECIALS)
    vocab = {t: i for i, t in enumerate(SMOLLM2_SPECIALS)}
    vocab.update(bpe_vocab(n))
    added_ids = {t: i for i, t in enumerate(SMOLLM2_SPECIALS)}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(i, t) for i, t in enumerate(SMOLLM2_SPECIALS)],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, byte_level(False, True, True)]},
        "post_processor": byte_level(True, False, True),
        "decoder": byte_level(True, True, True),
        "model": bpe_model(vocab, False),
    }
    cfg = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(i): {k: v for k, v in added(i, t).items() if k != "id"} for i, t in enumerate(SMOLLM2_SPECIALS)},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": "<|im_start|>",
        "chat_template": SMOLLM2_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "model_max_length": 8192,
        "pad_token": "<|im_end|>",
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": "<|endoftext|>",
        "vocab_size": 49152,
    }
    return tok, cfg, {"family": "smollm2", "vocab": vocab, "added_ids": added_ids, "nfc": False, "ignore_merges": False}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "tokenizers-families")
    for build in (llama3, qwen2, smollm2):
        tok, cfg, spec = build()
        out = os.path.join(root, spec["family"])
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "tokenizer.json"), "w") as f:
            json.dump(tok, f, indent=2, ensure_ascii=False)
            f.write("\n")
        with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
            json.dump(cfg, f, indent=2, ensure_ascii=False)
            f.write("\n")
        expected = {
            "produced_by": "scripts/family_tokenizers.py (python regex + byte-level BPE by merge rank)",
            "texts": TEXTS,
            "ids": [encode(t, spec, False) for t in TEXTS],
            "ids_with_special_tokens": [encode(t, spec, True) for t in TEXTS],
        }
        with open(os.path.join(out, "expected.json"), "w") as f:
            json.dump(expected, f, ensure_ascii=False)
            f.write("\n")
        print("wrote", out, [len(x) for x in expected["ids"]])


if __name__ == "__main__":
    main()
