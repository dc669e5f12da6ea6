#!/usr/bin/env python3
"""Cross-check Ponder's DeepseekV3 (MoE + MLA) policies against transformers.

    python scripts/hf_check_deepseek.py logits FOLDER --ids 1,5,7,...
        Loads FOLDER strictly as transformers.DeepseekV3ForCausalLM (any missing, unexpected or
        mismatched tensor is an error) and prints {"logits": [[V floats] per position]} for the ids.

    python scripts/hf_check_deepseek.py make FOLDER --vocab V [--seed S]
        Builds a tiny DeepseekV3 (2 layers: one dense, one MoE with 4 routed experts, top-2, one
        shared expert, q LoRA, interleaved RoPE), draws its weights (std 0.3) and a nonzero
        e_score_correction_bias, and saves it with save_pretrained, so that Ponder can load a folder
        written by transformers itself.

Ponder's tests (Tests/ModelTests/DeepseekCrossCheckTests.swift) compare these logits with Ponder's
own forward, and use scripts/hf_check.py for greedy generation.

Needs: pip install torch transformers safetensors
"""

import argparse
import json
import sys


def load_strict(folder):
    import torch
    from transformers import DeepseekV3ForCausalLM

    model, info = DeepseekV3ForCausalLM.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k != "error_msgs"} | (
        {"error_msgs": info["error_msgs"]} if info.get("error_msgs") else {}
    )
    if problems:
        print(f"{folder}: tensors do not match DeepseekV3ForCausalLM: {problems}", file=sys.stderr)
        sys.exit(1)
    return model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["logits", "make"])
    parser.add_argument("folder")
    parser.add_argument("--ids", help="comma-separated token ids (logits)")
    parser.add_argument("--vocab", type=int, help="vocabulary size (make)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    if args.mode == "logits":
        model = load_strict(args.folder)
        ids = [int(x) for x in args.ids.split(",")]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        print(json.dumps({"logits": logits.tolist()}))
        return 0

    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    torch.manual_seed(args.seed)
    config = DeepseekV3Config(
        vocab_size=args.vocab, hidden_size=32, intermediate_size=48, moe_intermediate_size=16,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, n_shared_experts=1,
        n_routed_experts=4, num_experts_per_tok=2, n_group=1, topk_group=1, first_k_dense_replace=1,
        kv_lora_rank=16, q_lora_rank=12, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=8,
        routed_scaling_factor=2.5, norm_topk_prob=True, max_position_embeddings=64, rope_interleave=True,
        tie_word_embeddings=False, initializer_range=0.3, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    model = DeepseekV3ForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.endswith("norm.weight"):
                p.normal_(0, 0.3)
        for layer in model.model.layers:
            gate = getattr(layer.mlp, "gate", None)
            if gate is not None and hasattr(gate, "e_score_correction_bias"):
                gate.e_score_correction_bias.normal_(0, 0.05)
    model.save_pretrained(args.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
