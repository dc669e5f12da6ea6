"""What the TRL peer scripts under bench/ share: the two rewards, a step timer and the peak memory."""
import re, resource, time
from transformers import TrainerCallback


def format_reward(completions, **kw):
    """1 when a completion starts with <think>…</think> then <answer>…</answer>."""
    return [1.0 if re.match(r"^<think>.*?</think>\s*<answer>.*?</answer>", c, re.S) else 0.0 for c in completions]


def correct_reward(completions, answer, **kw):
    """1 when the text in <answer>…</answer> is the problem's answer."""
    out = []
    for c, ans in zip(completions, answer):
        m = re.search(r"<answer>(.*?)</answer>", c, re.S)
        out.append(1.0 if m and m.group(1).strip() == ans.strip() else 0.0)
    return out


class StepTimer(TrainerCallback):
    """Seconds of every optimizer step (sampling, scoring and update), in `times`."""
    def __init__(self):
        self.times = []
    def on_step_begin(self, args, state, control, **kw): self.t = time.perf_counter()
    def on_step_end(self, args, state, control, **kw): self.times.append(time.perf_counter() - self.t)


def peak_rss_mib():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
