"""TRL GRPOTrainer on a Ponder task family's real problems, on CPU: the peer of
`ponder bench grpo --from DIR --task FAMILY`.

The same work as that command: a Ponder checkpoint folder (an HF Llama folder with its tokenizer.json),
the family's level-1 and level-2 problems as `ponder tasks show --json` writes them, Ponder's plain
prompt layout (BOS + problem + newline), G completions per prompt that stop at EOS or `</answer>`
(no min_new_tokens), correctness (the integer in <answer>…</answer> against the problem's answer) and
format rewards at weight 1 each, a KL leash of --beta. Prints one JSON line with the median seconds per
step after a warm-up step, the mean completion length and the peak resident memory.

Families whose verifier is an integer (add, mul) are scored exactly; for the others the correctness
reward is the same string comparison, which changes which answers count, not what a step costs.

Usage: trl_task_peer.py --from RUN/checkpoints/sft-final --task add [--prompts 16 --G 8 --new 64
                        --beta 0 --steps 4 --ponder .build/release/ponder]
"""
import argparse, json, os, random, statistics, subprocess, tempfile
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import torch
from datasets import Dataset
from transformers import AutoTokenizer
from trl import GRPOConfig, GRPOTrainer
from peer_common import StepTimer, correct_reward, format_reward, peak_rss_mib

p = argparse.ArgumentParser()
p.add_argument("--from", dest="model", required=True, help="Ponder checkpoint folder (config.json, model.safetensors, tokenizer.json)")
p.add_argument("--task", default="add")
p.add_argument("--prompts", type=int, default=16); p.add_argument("--G", type=int, default=8)
p.add_argument("--new", type=int, default=64); p.add_argument("--steps", type=int, default=4)
p.add_argument("--beta", type=float, default=0.04)
p.add_argument("--ponder", default=".build/release/ponder", help="the ponder binary that lists the problems")
a = p.parse_args()
torch.manual_seed(0); random.seed(0)

tok = AutoTokenizer.from_pretrained(a.model)
tok.padding_side = "left"
# Ponder stops a completion at EOS or `</answer>`; TRL masks a completion after its first
# processing_class.eos_token, so `</answer>` is that token here and generation stops at either.
eos = tok.eos_token_id
tok.eos_token = "</answer>"
stops = [tok.eos_token_id, eos]

rows = []
for level in (1, 2):
    out = subprocess.run([a.ponder, "tasks", "show", a.task, "--level", str(level), "-n", "256", "--json"],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        problem = json.loads(line)
        rows.append({"prompt": (tok.bos_token or "") + problem["prompt"] + "\n", "answer": problem["answer"]})
random.shuffle(rows)
ds = Dataset.from_list(rows)

timer = StepTimer()

args = GRPOConfig(output_dir=tempfile.mkdtemp(), use_cpu=True, bf16=False, per_device_train_batch_size=a.prompts * a.G,
                  gradient_accumulation_steps=1, num_generations=a.G, max_completion_length=a.new, temperature=1.0,
                  generation_kwargs={"eos_token_id": stops}, beta=a.beta, learning_rate=1e-4, max_steps=a.steps + 1,
                  logging_steps=1, save_strategy="no", report_to=[], dataloader_num_workers=0, seed=0, disable_tqdm=True)
trainer = GRPOTrainer(model=a.model, reward_funcs=[correct_reward, format_reward], args=args, train_dataset=ds,
                      processing_class=tok, callbacks=[timer])
trainer.train()
steady = timer.times[1:] or timer.times
lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h][1:]
print(json.dumps({"peer": "trl-grpo-task", "model": a.model, "task": a.task, "prompts": a.prompts, "G": a.G,
                  "max_new_tokens": a.new, "beta": a.beta, "step_s_median": round(statistics.median(steady), 3),
                  "steps": len(steady), "mean_completion_tokens": round(statistics.mean(lengths), 1) if lengths else None,
                  "threads": torch.get_num_threads(),
                  "peak_rss_mib": peak_rss_mib()}))
