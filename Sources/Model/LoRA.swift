// LoRA (Hu et al. 2021) on the linear layers of a Llama/Qwen2 policy, in PEFT's layout: each adapted
// weight W (out, in) gains A (r, in) and B (out, r), and the layer computes x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ.
// The base weights are frozen (no gradients, no optimizer state). A = kaiming-uniform (a = √5) and
// B = 0, as PEFT initialises them, so a fresh adapter leaves the policy's outputs unchanged. Cached
// decoding multiplies by W + (α/r)·B·A, merged once per cache. Adapters are saved as PEFT saves them
// (adapter_config.json, adapter_model.safetensors with PEFT's tensor names; Checkpoint.swift).

import Autograd
import Basics
import Foundation

/// The LoRA settings (PEFT's LoraConfig names). Rank 0 is off.
public struct LoRAConfig: Codable, Equatable, Sendable {
    /// r, the adapters' inner size (0: no LoRA, every weight trains).
    public var rank = 0
    /// α: the adapter's output is scaled by α / r.
    public var alpha = 32.0
    /// Dropout on the adapter's input. Only 0: GRPO's importance ratios compare the training forward
    /// with the sampling one, which dropout would make differ.
    public var dropout = 0.0
    /// The adapted linear layers, by their Hugging Face names.
    public var targetModules = LoRAConfig.allModules

    /// Every linear layer of a Llama/Qwen2 block that LoRA can adapt.
    public static let allModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    public init(rank: Int = 0, alpha: Double = 32, dropout: Double = 0, targetModules: [String] = LoRAConfig.allModules) {
        (self.rank, self.alpha, self.dropout, self.targetModules) = (rank, alpha, dropout, targetModules)
    }

    public var enabled: Bool { rank > 0 }
    /// α / r.
    public var scaling: Float { Float(alpha / Double(max(1, rank))) }

    /// Checks the settings; the message names the key (under model.lora).
    public func validate() throws {
        func need(_ ok: Bool, _ key: String, _ msg: String) throws {
            if !ok { throw PolicyError.invalidConfig("lora.\(key) \(msg)") }
        }
        try need((0...4096).contains(rank), "rank", "(\(rank)) must be in 0...4096 (0: off)")
        try need(alpha.isFinite && alpha > 0, "alpha", "(\(alpha)) must be a positive number")
        try need(dropout == 0, "dropout", "(\(dropout)) must be 0: dropout would make the training forward differ from the sampling one that GRPO's ratios compare against")
        try need(!targetModules.isEmpty, "target_modules", "must name at least one of \(Self.allModules.joined(separator: ", "))")
        for m in targetModules where !Self.allModules.contains(m) {
            try need(false, "target_modules", "names '\(m)'; use \(Self.allModules.joined(separator: ", "))")
        }
    }
}

/// One adapted weight's A (r, in) and B (out, r).
public final class LoRAAdapter {
    public let a: Tensor
    public let b: Tensor
    public let scaling: Float

    init(a: Tensor, b: Tensor, scaling: Float) {
        (self.a, self.b, self.scaling) = (a, b, scaling)
    }

    /// W + (α/r)·B·A, off the tape: the weight this adapter makes of `w` (cached decoding, `mergeLoRA`).
    /// Computed in B·A's own buffer (the same two roundings as `w + (B·A)·s`): a GRPO step merges every
    /// projection of the model before sampling, and two more weight-sized temporaries per projection
    /// were two more copies of the model's weights to fault in.
    func merged(_ w: Tensor) -> Tensor {
        Autograd.noGrad {
            let d = Tensor.matmul(b, a)
            precondition(d.shape == w.shape, "LoRA adapter makes \(d.shape), weight is \(w.shape)")
            let (pd, pw, s) = (d.data, w.data, scaling)
            Parallel.forRanges(d.count, cost: 2) { r in
                Kernels.axpy(s, pd + r.lowerBound, pw + r.lowerBound, into: pd + r.lowerBound, r.count)  // each element read before it is written
            }
            return d
        }
    }
}

extension LlamaBlock {
    /// The block's weight under a LoRA target name, and where it sits ("self_attn" or "mlp").
    func target(_ module: String) -> (weight: Tensor, parent: String) {
        switch module {
        case "q_proj": return (wq, "self_attn")
        case "k_proj": return (wk, "self_attn")
        case "v_proj": return (wv, "self_attn")
        case "o_proj": return (wo, "self_attn")
        case "gate_proj": return (wGate, "mlp")
        case "up_proj": return (wUp, "mlp")
        default: return (wDown, "mlp")
        }
    }
}

extension Policy {
    /// Adds LoRA adapters to `config.targetModules` of every layer, from `make(PEFT name, shape)`, and
    /// freezes every other weight. Llama and Qwen2 policies only.
    public func addLoRA(_ config: LoRAConfig, make: (String, [Int]) throws -> Tensor) throws {
        try config.validate()
        guard config.enabled else { return }
        guard lora == nil else { throw PolicyError.invalidConfig("lora: this policy has adapters already") }
        guard !self.config.isDeepseek else {
            throw PolicyError.invalidConfig("lora: adapters are built for Llama and Qwen2 policies, not DeepseekV3 (MLA/MoE) ones")
        }
        for (_, t) in namedTensors { t.requiresGrad = false }
        for (i, layer) in layers.enumerated() {
            guard let block = layer as? LlamaBlock else { continue }
            for module in config.targetModules {
                let (w, parent) = block.target(module)
                let prefix = Self.loraPrefix(layer: i, parent: parent, module: module)
                let a = try make(prefix + ".lora_A.weight", [config.rank, w.dim(1)])
                let b = try make(prefix + ".lora_B.weight", [w.dim(0), config.rank])
                a.requiresGrad = true
                b.requiresGrad = true
                block.adapters[module] = LoRAAdapter(a: a, b: b, scaling: config.scaling)
            }
        }
        lora = config
    }

    /// Adds freshly initialised adapters, as PEFT does: A kaiming-uniform with a = √5 (uniform in
    /// ±1/√in), B zero.
    public func addLoRA(_ config: LoRAConfig, rng: inout RNG) throws {
        var r = rng
        try addLoRA(config) { name, shape in
            name.hasSuffix("lora_B.weight") ? Tensor.zeros(shape, requiresGrad: true)
                : Tensor.uniform(shape, -1 / Float(shape[1]).squareRoot(), 1 / Float(shape[1]).squareRoot(), rng: &r, requiresGrad: true)
        }
        rng = r
    }

    /// PEFT's name of layer `layer`'s adapter on `module`, without the lora_A/lora_B suffix.
    static func loraPrefix(layer: Int, parent: String, module: String) -> String {
        "base_model.model.model.layers.\(layer).\(parent).\(module)"
    }

    /// Every adapter tensor under its PEFT name (lora_A then lora_B, layer by layer, in target order).
    public var loraTensors: [(String, Tensor)] {
        guard let lora else { return [] }
        var out: [(String, Tensor)] = []
        for (i, layer) in layers.enumerated() {
            guard let block = layer as? LlamaBlock else { continue }
            for module in lora.targetModules {
                guard let adapter = block.adapters[module] else { continue }
                let prefix = Self.loraPrefix(layer: i, parent: block.target(module).parent, module: module)
                out += [(prefix + ".lora_A.weight", adapter.a), (prefix + ".lora_B.weight", adapter.b)]
            }
        }
        return out
    }

    /// Every stored tensor, the adapters included (what a run keeps as its best weights).
    public var allTensors: [(String, Tensor)] { namedTensors + loraTensors }

    /// Runs `body` with the adapters switched off: the base policy (LoRA's reference for the KL term).
    public func withoutAdapters<T>(_ body: () throws -> T) rethrows -> T {
        let saved = adaptersEnabled
        adaptersEnabled = false
        defer { adaptersEnabled = saved }
        return try body()
    }

    /// Folds every adapter into its weight (W += (α/r)·B·A) and removes the adapters: an ordinary
    /// policy again, every weight trainable.
    public func mergeLoRA() {
        guard lora != nil else { return }
        for layer in layers {
            guard let block = layer as? LlamaBlock else { continue }
            for (module, adapter) in block.adapters {
                let w = block.target(module).weight
                w.data.update(from: adapter.merged(w).data, count: w.count)
            }
            block.adapters = [:]
        }
        for (_, t) in namedTensors { t.requiresGrad = true }
        lora = nil
    }
}

// MARK: - PEFT files

extension Checkpoint {
    /// adapter_config.json and adapter_model.safetensors as PEFT writes them, so that
    /// `peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(dir), dir)` loads them.
    static func saveAdapters(_ policy: Policy, to dir: URL) throws {
        guard let lora = policy.lora else { return }
        var file = SafeTensorsFile(metadata: ["format": "pt"])
        for (name, t) in policy.loraTensors { file.tensors[name] = StoredTensor(shape: t.shape, data: t.array) }
        try file.write(to: dir.appendingPathComponent("adapter_model.safetensors"))
        let config: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": lora.rank, "lora_alpha": lora.alpha, "lora_dropout": lora.dropout,
            "target_modules": lora.targetModules, "bias": "none", "fan_in_fan_out": false, "inference_mode": true,
            "init_lora_weights": true, "use_rslora": false, "use_dora": false, "modules_to_save": NSNull(),
            "base_model_name_or_path": dir.path, "revision": NSNull(), "layers_to_transform": NSNull(), "layers_pattern": NSNull(),
            "rank_pattern": [String: Any](), "alpha_pattern": [String: Any](),
        ]
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: dir.appendingPathComponent("adapter_config.json"))
    }

    /// Adds the adapters of a PEFT folder (adapter_config.json and adapter_model.safetensors) to
    /// `policy`, when `dir` has them. Ponder trains without LoRA dropout, so a saved dropout is read
    /// as 0; rsLoRA, DoRA, biases and fan_in_fan_out are refused with the key named.
    static func loadAdapters(into policy: Policy, from dir: URL) throws {
        let cfgURL = dir.appendingPathComponent("adapter_config.json")
        guard FileManager.default.fileExists(atPath: cfgURL.path) else { return }
        func fail(_ key: String, _ why: String) -> CheckpointError { .mismatch("\(cfgURL.path): \(key) \(why)") }
        guard let json = try JSONSerialization.jsonObject(with: Data(contentsOf: cfgURL)) as? [String: Any] else {
            throw fail("", "is not a JSON object")
        }
        guard (json["peft_type"] as? String) == "LORA" else { throw fail("peft_type", "is \(json["peft_type"] ?? "missing"); Ponder reads LORA adapters") }
        guard let r = json["r"] as? Int else { throw fail("r", "must be an integer") }
        guard let alpha = (json["lora_alpha"] as? NSNumber)?.doubleValue else { throw fail("lora_alpha", "must be a number") }
        guard let targets = json["target_modules"] as? [String] else { throw fail("target_modules", "must be a list of module names") }
        for key in ["use_rslora", "use_dora", "fan_in_fan_out"] where (json[key] as? Bool) == true {
            throw fail(key, "is true; Ponder's adapters are plain LoRA")
        }
        if let bias = json["bias"] as? String, bias != "none" { throw fail("bias", "is \(bias); Ponder's adapters have no biases") }
        let weightsURL = dir.appendingPathComponent("adapter_model.safetensors")
        let file = try SafeTensorsFile.read(from: weightsURL)
        do {
            try policy.addLoRA(LoRAConfig(rank: r, alpha: alpha, targetModules: targets)) { name, shape in
                Tensor(shape: shape, try file.requireWeights(name, shape: shape, file: weightsURL.path), requiresGrad: true)
            }
        } catch let e as PolicyError {
            throw fail("", "\(e)")
        }
    }
}
