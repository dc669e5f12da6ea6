// A checkpoint folder in Hugging Face layout: model.safetensors (Llama tensor names, (out, in)
// linear weights), config.json (a LlamaConfig), tokenizer.json and tokenizer_config.json.
// `transformers.LlamaForCausalLM.from_pretrained(folder)` loads it (scripts/hf_check.py).

import Autograd
import Foundation

public enum Checkpoint {
    /// Version of Ponder's checkpoint layout, stored in the safetensors metadata.
    public static let formatVersion = "1"

    /// Writes the policy and tokenizer into `dir` (created if needed), each file atomically.
    /// `metadata` is added to the safetensors header.
    public static func save(policy: Policy, tokenizer: CharTokenizer, to dir: URL, metadata: [String: String] = [:]) throws {
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
        try tokenizer.save(to: dir.appendingPathComponent("tokenizer.json"))
        try tokenizer.saveConfig(to: dir.appendingPathComponent("tokenizer_config.json"))
    }

    /// Reads a checkpoint folder; every tensor is checked for presence and shape, and errors name
    /// the file and the tensor or key.
    public static func load(from dir: URL) throws -> (policy: Policy, tokenizer: CharTokenizer, metadata: [String: String]) {
        let cfgURL = dir.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: cfgURL.path) else {
            throw CheckpointError.notACheckpoint(dir.path)
        }
        if modelType(of: cfgURL) == "deepseek_v3" { return try loadDeepseek(from: dir) }
        let hf = try LlamaConfigJSON.read(from: cfgURL)
        try hf.validate(file: cfgURL.path)
        guard hf.numKeyValueHeads == hf.numAttentionHeads, hf.headDim * hf.numAttentionHeads == hf.hiddenSize else {
            throw HFConfigError(file: cfgURL.path, key: "num_key_value_heads",
                                message: "is \(hf.numKeyValueHeads) with head_dim \(hf.headDim); this policy needs num_key_value_heads = num_attention_heads and head_dim = hidden_size / num_attention_heads (grouped-query attention is not supported yet)")
        }
        let config = policyConfig(hf)
        try config.validate()
        let weightsURL = dir.appendingPathComponent("model.safetensors")
        let file = try SafeTensorsFile.read(from: weightsURL)
        try file.validate(expected: hf.tensorSpecs(), file: weightsURL.path)
        let tokenizer = try CharTokenizer.load(from: dir.appendingPathComponent("tokenizer.json"))
        guard tokenizer.vocabSize == config.vocabSize else {
            throw CheckpointError.mismatch("\(dir.path): tokenizer.json has \(tokenizer.vocabSize) tokens but config.json says vocab_size \(config.vocabSize)")
        }
        let policy = try Policy(config: config) { name, shape in
            Tensor(shape: shape, try file.require(name, shape: shape, file: weightsURL.path), requiresGrad: true)
        }
        return (policy, tokenizer, file.metadata)
    }

    /// The HF config.json for a policy.
    public static func hfConfig(_ c: PolicyConfig, tokenizer: CharTokenizer) -> LlamaConfigJSON {
        LlamaConfigJSON(
            vocabSize: c.vocabSize, hiddenSize: c.dModel, intermediateSize: c.ffDim, numHiddenLayers: c.layers,
            numAttentionHeads: c.heads, maxPositionEmbeddings: c.maxContext, rmsNormEps: Double(c.rmsEps),
            ropeTheta: c.ropeTheta, tieWordEmbeddings: c.tieEmbeddings,
            bosTokenId: tokenizer.bos, eosTokenId: tokenizer.eos, padTokenId: tokenizer.pad)
    }

    /// The policy config described by an HF config.json.
    public static func policyConfig(_ hf: LlamaConfigJSON) -> PolicyConfig {
        PolicyConfig(vocabSize: hf.vocabSize, dModel: hf.hiddenSize, layers: hf.numHiddenLayers, heads: hf.numAttentionHeads,
                     ffDim: hf.intermediateSize, maxContext: hf.maxPositionEmbeddings, ropeTheta: hf.ropeTheta,
                     rmsEps: Float(hf.rmsNormEps), tieEmbeddings: hf.tieWordEmbeddings)
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
