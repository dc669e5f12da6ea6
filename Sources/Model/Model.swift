// Model: tokenizer, policy, sampler, safetensors I/O.
import Autograd
