"""TRL GRPOTrainer with a peft LoRA adapter on an imported Hugging Face model, on CPU: the peer of
`ponder bench grpo --from DIR --lora-rank R`.

The same work as that command: prompts "what is x+y?" over 2-3 digit sums, G completions of exactly
--new tokens each (min_new_tokens), correctness and format rewards, a KL leash of --beta to the base
(peft's adapters switched off, as Ponder's reference), AdamW on the adapters only. Prints one JSON line
with the median seconds per step after a warm-up step and the peak resident memory of the process.

Usage: trl_lora_peer.py --from DIR [--lora-rank 16 --prompts 4 --G 4 --new 128 --beta 0.04 --steps 1
                        --gradient-checkpointing]
"""
import argparse, json, os, random, statistics, tempfile
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoTokenizer
from trl import GRPOConfig, GRPOTrainer
from peer_common import StepTimer, correct_reward, format_reward, peak_rss_mib

p = argparse.ArgumentParser()
p.add_argument("--from", dest="model", required=True, help="Hugging Face model folder")
p.add_argument("--lora-rank", type=int, default=16)
p.add_argument("--prompts", type=int, default=4); p.add_argument("--G", type=int, default=4)
p.add_argument("--new", type=int, default=128); p.add_argument("--steps", type=int, default=1)
p.add_argument("--beta", type=float, default=0.04)
p.add_argument("--gradient-checkpointing", action="store_true")
a = p.parse_args()
torch.manual_seed(0); random.seed(0)

tok = AutoTokenizer.from_pretrained(a.model)
tok.padding_side = "left"
if tok.pad_token is None:
    tok.pad_token = tok.eos_token

rows = []
for _ in range(256):
    x, y = random.randint(10, 999), random.randint(10, 999)
    rows.append({"prompt": f"what is {x}+{y}?\n", "answer": str(x + y)})
ds = Dataset.from_list(rows)

timer = StepTimer()

lora = LoraConfig(r=a.lora_rank, lora_alpha=2 * a.lora_rank, lora_dropout=0.0, task_type="CAUSAL_LM",
                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
args = GRPOConfig(output_dir=tempfile.mkdtemp(), use_cpu=True, bf16=False, gradient_checkpointing=a.gradient_checkpointing,
                  per_device_train_batch_size=a.prompts * a.G, gradient_accumulation_steps=1, num_generations=a.G,
                  max_completion_length=a.new, temperature=1.0, generation_kwargs={"min_new_tokens": a.new}, beta=a.beta,
                  learning_rate=1e-4, max_steps=a.steps + 1, logging_steps=1000, save_strategy="no", report_to=[],
                  dataloader_num_workers=0, seed=0, disable_tqdm=True)
trainer = GRPOTrainer(model=a.model, reward_funcs=[correct_reward, format_reward], args=args, train_dataset=ds,
                      processing_class=tok, callbacks=[timer], peft_config=lora)
trainer.train()
steady = timer.times[1:] or timer.times
trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
print(json.dumps({"peer": "trl-grpo-peft", "model": a.model, "lora_rank": a.lora_rank, "trainable_params": trainable,
                  "prompts": a.prompts, "G": a.G, "new_tokens": a.new, "beta": a.beta,
                  "gradient_checkpointing": a.gradient_checkpointing, "step_s_median": round(statistics.median(steady), 3),
                  "steps": len(steady), "threads": torch.get_num_threads(),
                  "peak_rss_mib": peak_rss_mib()}))
