#!/usr/bin/env python3
"""Make the Hugging Face reference fixtures Ponder's import tests compare against.

    python scripts/make_hf_fixtures.py tokenizers OUT_DIR      # BPE tokenizers + expected ids (committed)
    python scripts/make_hf_fixtures.py model OUT_DIR --arch qwen2|llama [--dtype bfloat16] [--shards 2]
    python scripts/make_hf_fixtures.py smollm2 OUT_DIR [--layers 30]   # random SmolLM2-135M-shaped folder
    python scripts/make_hf_fixtures.py qwen25 OUT_DIR [--layers 24]    # random Qwen2.5-0.5B-shaped folder

`tokenizers` trains byte-level BPE tokenizers on a small built-in corpus in three pre-tokenizer
styles (GPT-2 ByteLevel regex + Digits as in SmolLM2, the Llama-3 Split regex, the Qwen2 Split regex
with an NFC normalizer), each with special and added tokens, and records `encode(text,
add_special_tokens=False)` ids and `decode` texts of a hard test corpus in expected.json.

`model` writes a tiny random LlamaForCausalLM / Qwen2ForCausalLM folder (GQA, tied embeddings, Qwen2
q/k/v biases; for llama head_dim != hidden/heads and Llama-3 RoPE scaling) with a BPE tokenizer, plus reference.json holding
transformers' logits for fixed ids and its greedy generation. Everything is seeded: the same pinned
versions (torch 2.x, transformers 5.x, tokenizers 0.2x) give the same files.

Needs: pip install torch transformers tokenizers safetensors
"""

import argparse
import json
import os
import sys

CORPUS = [
    "Hello world! It's a test; we're sure they'll say it isn't. I'd've, you've, she'll, I'm.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG'S BACK. IT'S AN EXAMPLE, ISN'T IT?",
    "What is 12+30? <think>\n12+30=42\n</think>\n<answer>\n42\n</answer>",
    "Compute 1234567 * 89 = 109876463 and 3.14159 + 2.71828 ≈ 5.85987.",
    "def add(a, b):\n    return a + b\n\n\nclass Foo:\n\tpass  # tabs and  spaces   here\r\n",
    "Café, naïve, façade, résumé, Ångström, jalapeño, Straße, ﬁne, Æsir.",
    "Привет, мир! Как дела? Это тест кириллицы 2024 года.",
    "日本語のテキストです。中文文本测试，还有数字１２３和表情。",
    "مرحبا بالعالم ١٢٣ and עברית שלום too",
    "Emoji: 😀🎉👍🏽 👨‍👩‍👧‍👦 ❤️ 🇫🇷 — dashes – and “quotes” ‘single’ … ellipsis",
    "Numbers: 0 00 000 0000 12345678901234567890 ½ ² ⅷ Ⅻ 1,000,000.50",
    "    indented\n\n\n\nmany newlines\r\n\r\nwindows\t\ttabs \u00a0nbsp \u3000ideographic space",
    "URLs: https://example.com/path?q=1&x=y#frag user@mail.org <html><body>x</body></html>",
    "math: ∑_{i=1}^{n} i² = n(n+1)(2n+1)/6, ∫ f(x) dx, α+β=γ, x≤y≥z≠w",
] * 3

TEST_TEXTS = [
    "",
    " ",
    "Hello world",
    " Hello  world   ",
    "It's, I'M, we'RE, they'll, you'Ve, he'd, 'tis, O'Neil, rock'n'roll, 'ſ 'S",
    "What is 12+30? <think>\n12+30=42\n</think>\n<answer>\n42\n</answer><|endoftext|>",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|><|im_end|><|im_start|x <|endoftext|><|endoftext|>",
    "1234567890 3.14159 0001 ½²ⅷⅫ١٢٣１２３",
    "Café naïve Ångström Straße ﬁne",
    "Cafe\u0301 A\u030angstro\u0308m",  # decomposed forms: NFC composes them for Qwen2
    "Привет, мир!  日本語のテキスト。中文，测试",
    "😀🎉👍🏽 👨‍👩‍👧‍👦 ❤️ 🇫🇷 — “quotes” … ",
    "\n\n\n  \n\t\t \r\n\r\n\u00a0\u3000x\n \n",
    "    def f(x):\n        return x  # comment\n",
    "a\n\nb \n c  \n\n  d\t\n",
    "!!!??? ...,,, ;;; ::: --- *** ''' \"\"\"",
    "https://example.com/path?q=1&x=y#frag user@mail.org",
    "x≤y≥z≠w ∑∫ α+β=γ",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzqqqqqqqqq",
    "UNSEEN wörds ŵith ŗare ĉharacters: ǅ ǈ ß ẞ",
    "\u200b\u200d zero width \ufeff bom",
    "tab\tseparated\tvalues\t1\t2\t3",
]

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED = ["<think>", "</think>", "<answer>", "</answer>"]

GPT2_REGEX = None  # ByteLevel(use_regex=True) uses it implicitly
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def train_tokenizer(style: str, vocab_size: int = 700):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(ignore_merges=(style == "llama3")))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=(style == "gpt2"))
    if style == "gpt2":  # SmolLM2 / StarCoder style: single digits, then the GPT-2 regex
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        regex = LLAMA3_REGEX if style == "llama3" else QWEN2_REGEX
        split = pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False)
        tok.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
    if style == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[AddedToken(s, special=True, normalized=False) for s in SPECIALS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.add_tokens([AddedToken(s, special=False, normalized=False) for s in ADDED])
    return tok


def make_tokenizers(out: str) -> None:
    expected = {}
    for style in ["gpt2", "llama3", "qwen2"]:
        tok = train_tokenizer(style)
        tok.save(os.path.join(out, f"{style}.json"))
        rows = []
        for text in TEST_TEXTS:
            ids = tok.encode(text, add_special_tokens=False).ids
            rows.append({
                "text": text, "ids": ids,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "skipped": tok.decode(ids, skip_special_tokens=True),
            })
        expected[style] = rows
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=0)
        f.write("\n")


def make_model(out: str, arch: str, dtype: str, shards: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0 if arch == "qwen2" else 1)
    os.makedirs(out, exist_ok=True)
    tok = train_tokenizer("qwen2" if arch == "qwen2" else "llama3")
    vocab = tok.get_vocab_size()
    eos = tok.token_to_id("<|endoftext|>")
    common = dict(vocab_size=vocab + 5, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                  num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=128,
                  rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=eos, eos_token_id=eos)
    if arch == "qwen2":
        config = Qwen2Config(**common, rope_theta=1_000_000.0, use_sliding_window=False)
        model = Qwen2ForCausalLM(config)
    else:
        # Llama-3.2-style RoPE scaling, with a short original context so that all three frequency
        # bands (kept, interpolated, divided by factor) occur at head_dim 12.
        config = LlamaConfig(**common, head_dim=12, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500_000.0, "factor": 4.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
        model = LlamaForCausalLM(config)
    with torch.no_grad():  # wide weights so argmax never ties
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
            elif "bias" in name:
                p.normal_(0, 0.5)
            else:
                p.uniform_(0.5, 1.5)
    model.eval()
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    model = model.to(torch_dtype)
    max_shard = "1GB"
    if shards > 1:
        total = sum(p.numel() * p.element_size() for p in model.parameters())
        max_shard = f"{total // shards // 1000 + 1}KB"
    model.save_pretrained(out, max_shard_size=max_shard)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(out)
    # The reference is the folder as transformers loads it in fp32 (a model cast down and back up
    # would also carry a bf16-rounded RoPE inv_freq buffer).
    auto = LlamaForCausalLM if arch == "llama" else Qwen2ForCausalLM
    model = auto.from_pretrained(out, dtype=torch.float32).eval()

    text = "What is 12+30? <think>\n12+30=42\n</think>\n<answer>\n42\n</answer>"
    ids = tok.encode(text, add_special_tokens=False).ids
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
        prompt = tok.encode("Café 2024: it's <think>", add_special_tokens=False).ids
        gen = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_new_tokens=20, do_sample=False, temperature=None, top_p=None, top_k=None,
                             eos_token_id=None, pad_token_id=eos)
    ref = {"ids": ids, "logits": logits.reshape(-1).tolist(), "prompt": prompt,
           "generated": gen[0, len(prompt):].tolist()}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


def make_smollm2(out: str, layers: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    tok = train_tokenizer("gpt2", vocab_size=2000)
    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
                         bos_token_id=0, eos_token_id=0, initializer_range=0.041666666666666664)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(out)
    print(f"{out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")


def make_qwen25(out: str, layers: int) -> None:
    """Qwen2.5-0.5B's shape (494M parameters at 24 layers, vocabulary 151,936, tied embeddings, q/k/v
    biases, GQA 14/2), random weights, a small trained Qwen2-style tokenizer (ids past it are unused)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    tok = train_tokenizer("qwen2", vocab_size=2000)
    eos = tok.token_to_id("<|endoftext|>")
    config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=layers,
                         num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                         rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
                         bos_token_id=eos, eos_token_id=eos)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(out)
    print(f"{out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["tokenizers", "model", "smollm2", "qwen25"])
    parser.add_argument("out")
    parser.add_argument("--arch", choices=["llama", "qwen2"], default="qwen2")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--layers", type=int, default=None, help="decoder layers (default: the model's own, 30 or 24)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.what == "tokenizers":
        make_tokenizers(args.out)
    elif args.what == "model":
        make_model(args.out, args.arch, args.dtype, args.shards)
    elif args.what == "smollm2":
        make_smollm2(args.out, args.layers or 30)
    else:
        make_qwen25(args.out, args.layers or 24)
    return 0


if __name__ == "__main__":
    sys.exit(main())
