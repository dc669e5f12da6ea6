import Foundation
import XCTest

import Model

final class HFConfigTests: XCTestCase {
    static let tiny = LlamaConfigJSON(
        vocabSize: 103, hiddenSize: 64, intermediateSize: 160, numHiddenLayers: 2, numAttentionHeads: 4,
        numKeyValueHeads: 2, maxPositionEmbeddings: 256, tieWordEmbeddings: false,
        bosTokenId: 1, eosTokenId: 2, padTokenId: 0)

    func testTensorSpecsFollowHuggingFaceNamesAndLayouts() {
        let specs = Self.tiny.tensorSpecs()
        XCTAssertEqual(specs.count, 1 + 2 * 9 + 2)
        XCTAssertEqual(specs.first, TensorSpec("model.embed_tokens.weight", [103, 64]))
        XCTAssertEqual(
            Array(specs[1...9]),
            [
                TensorSpec("model.layers.0.input_layernorm.weight", [64]),
                TensorSpec("model.layers.0.self_attn.q_proj.weight", [64, 64]),
                TensorSpec("model.layers.0.self_attn.k_proj.weight", [32, 64]),
                TensorSpec("model.layers.0.self_attn.v_proj.weight", [32, 64]),
                TensorSpec("model.layers.0.self_attn.o_proj.weight", [64, 64]),
                TensorSpec("model.layers.0.post_attention_layernorm.weight", [64]),
                TensorSpec("model.layers.0.mlp.gate_proj.weight", [160, 64]),
                TensorSpec("model.layers.0.mlp.up_proj.weight", [160, 64]),
                TensorSpec("model.layers.0.mlp.down_proj.weight", [64, 160]),
            ])
        XCTAssertEqual(
            specs.suffix(2), [TensorSpec("model.norm.weight", [64]), TensorSpec("lm_head.weight", [103, 64])])
        var tied = Self.tiny
        tied.tieWordEmbeddings = true
        XCTAssertEqual(tied.tensorSpecs().last, TensorSpec("model.norm.weight", [64]))
    }

    func testWriteReadRoundTrip() throws {
        let url = try temporaryDirectory().appendingPathComponent("config.json")
        try Self.tiny.write(to: url)
        XCTAssertEqual(try LlamaConfigJSON.read(from: url), Self.tiny)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        XCTAssertEqual(json["architectures"] as? [String], ["LlamaForCausalLM"])
        XCTAssertEqual(json["head_dim"] as? Int, 16)
        XCTAssertEqual(json["rope_theta"] as? Double, 10_000)
        XCTAssertEqual((json["rope_parameters"] as? [String: Any])?["rope_type"] as? String, "default")
        XCTAssertEqual(json["eos_token_id"] as? Int, 2)
        XCTAssertEqual(Self.tiny.jsonData(), Self.tiny.jsonData())
    }

    func testReadsConfigsWrittenByTransformers() throws {
        // transformers 5 style: rope_parameters, extra keys, eos list; transformers 4 style: torch_dtype, rope_theta.
        let v5 = #"""
            {"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":50,"hidden_size":32,
             "intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":4,"dtype":"bfloat16",
             "rope_parameters":{"rope_type":"default","rope_theta":500000.0},"eos_token_id":[2,7],
             "use_cache":true,"transformers_version":"5.0.0","rope_scaling":null}
            """#
        let config = try read(v5)
        XCTAssertEqual(config.ropeTheta, 500_000)
        XCTAssertEqual(config.eosTokenIds, [2, 7])
        XCTAssertEqual(config.numKeyValueHeads, 4)
        XCTAssertEqual(config.headDim, 8)
        XCTAssertEqual(config.dtype, "bfloat16")
        XCTAssertEqual(config.rmsNormEps, 1e-6, "transformers' default")
        XCTAssertFalse(config.tieWordEmbeddings)
        let v4 = try read(
            #"{"model_type":"llama","vocab_size":50,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":4,"torch_dtype":"float16","rope_theta":1000}"#
        )
        XCTAssertEqual(v4.ropeTheta, 1000)
        XCTAssertEqual(v4.dtype, "float16")
    }

    func testErrorsNameTheKey() throws {
        let base =
            #""model_type":"llama","vocab_size":50,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1"#
        try rejects("{\(base)}", key: "num_attention_heads", "is required")
        try rejects("{\(base),\"num_attention_heads\":\"4\"}", key: "num_attention_heads", "must be Int")
        try rejects(
            "{\(base),\"num_attention_heads\":4,\"num_key_value_heads\":3}", key: "num_key_value_heads",
            "is 3; it must divide num_attention_heads (4)")
        try rejects(
            "{\(base),\"num_attention_heads\":4,\"attention_bias\":true}", key: "attention_bias",
            "is true; Ponder's attention has no biases")
        try rejects(
            "{\(base),\"num_attention_heads\":4,\"rope_scaling\":{\"type\":\"linear\"}}", key: "rope_scaling",
            "has rope_type \"linear\"; Ponder supports \"default\" and \"llama3\" RoPE only")
        try rejects(
            "{\(base),\"num_attention_heads\":4,\"rope_parameters\":{\"rope_type\":\"yarn\"}}", key: "rope_parameters",
            "has rope_type \"yarn\"; Ponder supports \"default\" and \"llama3\" RoPE only")
        try rejects(
            "{\(base),\"num_attention_heads\":4,\"pad_token_id\":50}", key: "pad_token_id",
            "is 50; it must be in 0..<50 (vocab_size)")
        try rejects(#"{"model_type":"gpt2"}"#, key: "model_type", "is \"gpt2\"; Ponder reads \"llama\" and \"qwen2\"")
        try rejects(
            "{\(base.replacingOccurrences(of: "llama", with: "mistral")),\"num_attention_heads\":4}",
            key: "model_type", "is \"mistral\"; Ponder reads \"llama\" and \"qwen2\"")
        try rejects("not json", key: nil, "is not valid JSON")
    }

    private func read(_ json: String) throws -> LlamaConfigJSON {
        let url = try temporaryDirectory().appendingPathComponent("config.json")
        try Data(json.utf8).write(to: url)
        return try LlamaConfigJSON.read(from: url)
    }

    private func rejects(_ json: String, key: String?, _ message: String, line: UInt = #line) throws {
        let url = try temporaryDirectory().appendingPathComponent("config.json")
        try Data(json.utf8).write(to: url)
        XCTAssertThrowsError(try LlamaConfigJSON.read(from: url), line: line) { error in
            XCTAssertEqual(
                error as? HFConfigError, HFConfigError(file: url.path, key: key, message: message), line: line)
        }
    }
}
