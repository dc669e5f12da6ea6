#!/usr/bin/env python3
"""Load a Ponder checkpoint folder with Hugging Face tools and generate greedily.

    python scripts/hf_check.py CHECKPOINT --prompt "What is 2+3?" --max-new 32

CHECKPOINT holds config.json, model.safetensors and tokenizer.json as Ponder writes them. The model
is loaded with transformers.LlamaForCausalLM.from_pretrained, or DeepseekV3ForCausalLM when config.json
says model_type "deepseek_v3" (a policy with MoE or MLA), strictly: any missing, unexpected or
mismatched tensor is an error, not a warning and the tokenizer with tokenizers.Tokenizer.from_file.
The prompt is laid out as Ponder lays it out, BOS + text + "\\n" (pass --raw to send the text
unchanged after BOS). Generation is greedy and stops at EOS or after </answer>, like
`ponder sample --greedy`. Prints one JSON object:

    {"prompt_ids": [...], "new_ids": [...], "text": "...", "text_with_special": "..."}

Needs: pip install torch transformers tokenizers safetensors
"""

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="folder with config.json, model.safetensors, tokenizer.json")
    parser.add_argument("--prompt", required=True, help="problem text")
    parser.add_argument("--max-new", type=int, default=64, help="most tokens to generate (default 64)")
    parser.add_argument("--raw", action="store_true", help='do not append "\\n" to the prompt')
    args = parser.parse_args()

    import torch
    from tokenizers import Tokenizer
    from transformers import DeepseekV3ForCausalLM, LlamaForCausalLM

    tokenizer = Tokenizer.from_file(f"{args.checkpoint}/tokenizer.json")
    with open(f"{args.checkpoint}/config.json") as f:
        model_type = json.load(f).get("model_type")
    model_class = DeepseekV3ForCausalLM if model_type == "deepseek_v3" else LlamaForCausalLM
    model, info = model_class.from_pretrained(
        args.checkpoint, dtype=torch.float32, output_loading_info=True
    )
    problems = {k: v for k, v in info.items() if v and k != "error_msgs"} | (
        {"error_msgs": info["error_msgs"]} if info.get("error_msgs") else {}
    )
    if problems:
        print(f"{args.checkpoint}: tensors do not match {model_class.__name__}: {problems}", file=sys.stderr)
        return 1
    model.eval()

    bos = tokenizer.token_to_id("<|bos|>")
    eos = tokenizer.token_to_id("<|eos|>")
    pad = tokenizer.token_to_id("<|pad|>")
    answer_end = tokenizer.token_to_id("</answer>")
    text = args.prompt if args.raw else args.prompt + "\n"
    prompt_ids = [bos] + tokenizer.encode(text).ids

    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt_ids]),
            attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
            max_new_tokens=args.max_new,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            eos_token_id=[eos, answer_end],
            pad_token_id=pad,
        )
    new_ids = out[0, len(prompt_ids):].tolist()
    print(json.dumps({
        "prompt_ids": prompt_ids,
        "new_ids": new_ids,
        "text": tokenizer.decode(new_ids, skip_special_tokens=True),
        "text_with_special": tokenizer.decode(new_ids, skip_special_tokens=False),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
