// A checkpoint folder in Hugging Face layout: model.safetensors (Llama or Qwen2 tensor names, (out, in)
// linear weights), config.json (a LlamaConfig or Qwen2Config), tokenizer.json and
// tokenizer_config.json. `transformers.AutoModelForCausalLM.from_pretrained(folder)` loads it
// (scripts/hf_check.py).
//
// A policy with LoRA adapters also writes adapter_config.json and adapter_model.safetensors as PEFT
// does (LoRA.swift), beside the frozen base; loading a folder that has them adds the adapters back.
//
// Loading also reads folders that transformers wrote: weights in F32, BF16 or F16 (converted exactly
// to Float), in one model.safetensors or in shards listed by model.safetensors.index.json, and a
// byte-level BPE tokenizer.json (BPETokenizer) instead of Ponder's character vocabulary.

import Autograd
import Foundation

public enum Checkpoint {
    /// Version of Ponder's checkpoint layout, stored in the safetensors metadata.
    public static let formatVersion = "1"
    /// Metadata key of the task families a training run evaluated on (comma-separated): what
    /// `ponder eval` evaluates the checkpoint on when no family is named.
    public static let evalFamiliesKey = "ponder_eval_families"
    /// Metadata key of the matmul precision a training run sampled with (`f32` or `bf16`): what
    /// `ponder eval` and `ponder sample` run the checkpoint in when no --precision is given.
    public static let precisionKey = "ponder_matmul_precision"

    /// Writes the policy and tokenizer into `dir` (created if needed), each file atomically.
    /// `metadata` is added to the safetensors header. A Qwen2-shaped policy (q/k/v biases) is written
    /// with a Qwen2 config.json; an imported BPE tokenizer is written back unchanged.
    public static func save(policy: Policy, tokenizer: any Tokenizer, to dir: URL, metadata: [String: String] = [:]) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var file = SafeTensorsFile(metadata: metadata.merging(["format": "pt", "ponder_format_version": formatVersion]) { a, _ in a })
        for (name, t) in policy.namedTensors { file.tensors[name] = StoredTensor(shape: t.shape, data: t.array) }
        try file.write(to: dir.appendingPathComponent("model.safetensors"))
        if policy.config.isDeepseek {
            try DeepseekV3ConfigJSON(policy.config, bos: tokenizer.bos, eos: tokenizer.eos, pad: tokenizer.pad)
                .write(to: dir.appendingPathComponent("config.json"))
        } else {
            try hfConfig(policy.config, tokenizer: tokenizer).write(to: dir.appendingPathComponent("config.json"))
        }
        if policy.lora != nil { try saveAdapters(policy, to: dir) }
        try tokenizer.save(to: dir.appendingPathComponent("tokenizer.json"))
        if let char = tokenizer as? CharTokenizer {
            try char.saveConfig(to: dir.appendingPathComponent("tokenizer_config.json"))
        } else if let bpe = tokenizer as? BPETokenizer {
            try bpe.saveConfig(to: dir.appendingPathComponent("tokenizer_config.json"))
        }
    }

    /// Reads a checkpoint folder; every tensor is checked for presence and shape, and errors name
    /// the file and the tensor or key.
    public static func load(from dir: URL) throws -> (policy: Policy, tokenizer: any Tokenizer, metadata: [String: String]) {
        let cfgURL = dir.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: cfgURL.path) else {
            throw CheckpointError.notACheckpoint(dir.path)
        }
        if modelType(of: cfgURL) == "deepseek_v3" { return try loadDeepseek(from: dir) }
        let hf = try LlamaConfigJSON.read(from: cfgURL)
        try hf.validate(file: cfgURL.path)
        let config = policyConfig(hf)
        try config.validate()
        var (file, weightsName) = try readWeights(dir)
        if hf.tieWordEmbeddings { file.tensors["lm_head.weight"] = nil }  // some writers store the tied copy too
        try file.validate(expected: hf.tensorSpecs(), file: weightsName)
        let tokenizer = try loadTokenizer(dir, hf: hf)
        guard tokenizer.vocabSize <= config.vocabSize, tokenizer is BPETokenizer || tokenizer.vocabSize == config.vocabSize else {
            throw CheckpointError.mismatch("\(dir.path): tokenizer.json has \(tokenizer.vocabSize) tokens but config.json says vocab_size \(config.vocabSize)")
        }
        let policy = try Policy(config: config) { name, shape in
            let t = Tensor(shape: shape, try file.requireWeights(name, shape: shape, file: weightsName), requiresGrad: true)
            file.tensors[name] = nil  // free each converted tensor at once: peak memory is one copy, not two
            return t
        }
        try loadAdapters(into: policy, from: dir)
        return (policy, tokenizer, file.metadata)
    }

    /// The tokenizer of a folder: Ponder's character vocabulary (a WordLevel tokenizer.json) or a
    /// byte-level BPE, whose EOS, BOS and PAD ids come from config.json / generation_config.json.
    static func loadTokenizer(_ dir: URL, hf: LlamaConfigJSON) throws -> any Tokenizer {
        let url = dir.appendingPathComponent("tokenizer.json")
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.invalidFile(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        let model = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["model"] as? [String: Any]
        if (model?["type"] as? String) == "WordLevel" { return try CharTokenizer.load(from: url) }
        var eos = hf.eosTokenIds
        let generation = dir.appendingPathComponent("generation_config.json")
        if let g = try? JSONSerialization.jsonObject(with: Data(contentsOf: generation)) as? [String: Any] {
            let ids = (g["eos_token_id"] as? [Int]) ?? (g["eos_token_id"] as? Int).map { [$0] } ?? []
            for id in ids where !eos.contains(id) { eos.append(id) }
        }
        var tokenizer = try BPETokenizer(data: data, file: url.path, eos: eos, bos: hf.bosTokenId, pad: hf.padTokenId)
        tokenizer.configData = try? Data(contentsOf: dir.appendingPathComponent("tokenizer_config.json"))
        return tokenizer
    }

    /// The weights of a folder: model.safetensors, or the shards model.safetensors.index.json lists.
    /// Returns the tensors and the file name errors should cite.
    public static func readWeights(_ dir: URL) throws -> (SafeTensorsFile, String) {
        let single = dir.appendingPathComponent("model.safetensors")
        let indexURL = dir.appendingPathComponent("model.safetensors.index.json")
        let fm = FileManager.default
        if fm.fileExists(atPath: single.path) || !fm.fileExists(atPath: indexURL.path) {
            return (try SafeTensorsFile.read(from: single), single.path)
        }
        func bad(_ key: String?, _ message: String) -> HFConfigError {
            HFConfigError(file: indexURL.path, key: key, message: message)
        }
        guard let index = try? JSONSerialization.jsonObject(with: Data(contentsOf: indexURL)) as? [String: Any] else {
            throw bad(nil, "is not a JSON object")
        }
        guard let map = index["weight_map"] as? [String: String], !map.isEmpty else {
            throw bad("weight_map", "must map every tensor name to its shard file")
        }
        var merged = SafeTensorsFile()
        for shard in Set(map.values).sorted() {
            guard !shard.contains("/"), !shard.hasPrefix(".") else {
                throw bad("weight_map", "names shard \"\(shard)\"; shards must be files in the same folder")
            }
            let url = dir.appendingPathComponent(shard)
            guard fm.fileExists(atPath: url.path) else {
                throw bad("weight_map", "names shard \(shard), which is missing from \(dir.path)")
            }
            let part = try SafeTensorsFile.read(from: url)
            let listed = Set(map.filter { $0.value == shard }.keys)
            if let missing = listed.subtracting(part.tensors.keys).sorted().first {
                throw bad("weight_map", "puts tensor '\(missing)' in \(shard), which does not hold it")
            }
            if let extra = Set(part.tensors.keys).subtracting(listed).sorted().first {
                throw bad("weight_map", "does not list tensor '\(extra)', which \(shard) holds; the index and shards disagree")
            }
            merged.tensors.merge(part.tensors) { a, _ in a }
            merged.metadata.merge(part.metadata) { a, _ in a }
        }
        return (merged, indexURL.path)
    }

    /// The HF config.json for a policy: Qwen2 when it has q/k/v biases, else Llama.
    public static func hfConfig(_ c: PolicyConfig, tokenizer: any Tokenizer) -> LlamaConfigJSON {
        var hf = LlamaConfigJSON(
            vocabSize: c.vocabSize, hiddenSize: c.dModel, intermediateSize: c.ffDim, numHiddenLayers: c.layers,
            numAttentionHeads: c.heads, numKeyValueHeads: c.kvHeadCount, headDim: c.headDim,
            maxPositionEmbeddings: c.maxContext, rmsNormEps: Double(c.rmsEps),
            ropeTheta: c.ropeTheta, tieWordEmbeddings: c.tieEmbeddings,
            bosTokenId: tokenizer.bos, eosTokenId: tokenizer.eos, padTokenId: tokenizer.pad)
        hf.ropeScaling = c.ropeScaling
        if c.hasQKVBias {
            hf.modelType = "qwen2"
            hf.architectures = ["Qwen2ForCausalLM"]
        }
        return hf
    }

    /// The policy config described by an HF config.json.
    public static func policyConfig(_ hf: LlamaConfigJSON) -> PolicyConfig {
        var c = PolicyConfig(vocabSize: hf.vocabSize, dModel: hf.hiddenSize, layers: hf.numHiddenLayers, heads: hf.numAttentionHeads,
                             ffDim: hf.intermediateSize, maxContext: hf.maxPositionEmbeddings, ropeTheta: hf.ropeTheta,
                             rmsEps: Float(hf.rmsNormEps), tieEmbeddings: hf.tieWordEmbeddings)
        if hf.numKeyValueHeads != hf.numAttentionHeads { c.kvHeads = hf.numKeyValueHeads }
        if hf.headDim * hf.numAttentionHeads != hf.hiddenSize { c.headSize = hf.headDim }
        if hf.qkvBias { c.qkvBias = true }
        c.ropeScaling = hf.ropeScaling
        return c
    }
}

public enum CheckpointError: Error, CustomStringConvertible {
    case notACheckpoint(String)
    case mismatch(String)

    public var description: String {
        switch self {
        case .notACheckpoint(let p): return "\(p) is not a checkpoint folder: it has no config.json (expected model.safetensors, config.json and tokenizer.json)"
        case .mismatch(let m): return m
        }
    }
}
