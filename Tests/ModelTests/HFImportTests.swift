// Importing Hugging Face folders: sharded weights (always), and tiny random Qwen2 and Llama models
// made by transformers (scripts/make_hf_fixtures.py; skipped without the venv), whose logits, greedy
// generations and tokenization Ponder must reproduce, and which transformers must load again after
// Ponder saves them.

import Autograd
import Foundation
import Model
import TestSupport
import XCTest

final class HFImportTests: XCTestCase {
    static let root = Repository.root

    // MARK: Sharded weights (pure Swift)

    func makeShardedFolder() throws -> (URL, Policy) {
        var cfg = GQAPolicyTests.config
        cfg.maxContext = 32
        cfg.initStd = 0.3
        cfg.vocabSize = CharTokenizer().vocabSize
        var rng = RNG(seed: 8, stream: "init")
        let policy = Policy(config: cfg, rng: &rng)
        let dir = try temporaryDirectory()
        try Checkpoint.save(policy: policy, tokenizer: CharTokenizer(), to: dir)
        let whole = try SafeTensorsFile.read(from: dir.appendingPathComponent("model.safetensors"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.safetensors"))
        var shards = [SafeTensorsFile(), SafeTensorsFile()]
        var map: [String: String] = [:]
        for (i, name) in whole.tensors.keys.sorted().enumerated() {
            shards[i % 2].tensors[name] = whole.tensors[name]
            map[name] = "model-0000\(i % 2 + 1)-of-00002.safetensors"
        }
        for (i, shard) in shards.enumerated() {
            try shard.write(to: dir.appendingPathComponent("model-0000\(i + 1)-of-00002.safetensors"))
        }
        try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": map])
            .write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        return (dir, policy)
    }

    func testShardedFolderLoadsBitExact() throws {
        let (dir, policy) = try makeShardedFolder()
        let loaded = try Checkpoint.load(from: dir).policy
        XCTAssertEqual(loaded.config.kvHeadCount, 2)
        XCTAssertEqual(loaded.config.headDim, 6)
        XCTAssertEqual(loaded.namedParameters.map(\.0), policy.namedParameters.map(\.0))
        for ((name, a), (_, b)) in zip(policy.namedParameters, loaded.namedParameters) {
            XCTAssertEqual(a.array.map(\.bitPattern), b.array.map(\.bitPattern), name)
        }
        let config = try String(contentsOf: dir.appendingPathComponent("config.json"), encoding: .utf8)
        XCTAssertTrue(config.contains("\"model_type\" : \"qwen2\"") && config.contains("Qwen2ForCausalLM"), config)
    }

    func testShardIndexErrorsNameTheFileAndTensor() throws {
        let index = "model.safetensors.index.json"
        func error(_ edit: (URL, inout [String: String]) throws -> Void) throws -> String {
            let (dir, _) = try makeShardedFolder()
            let url = dir.appendingPathComponent(index)
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            var map = json["weight_map"] as! [String: String]
            try edit(dir, &map)
            try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: url)
            do {
                _ = try Checkpoint.load(from: dir)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let q0 = "model.layers.0.self_attn.q_proj.weight"
        let missingShard = try error { dir, _ in try FileManager.default.removeItem(at: dir.appendingPathComponent("model-00002-of-00002.safetensors")) }
        XCTAssertTrue(missingShard.contains(index) && missingShard.contains("model-00002-of-00002.safetensors") && missingShard.contains("missing"), missingShard)
        let wrongShard = try error { _, map in map[q0] = map[q0] == "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors" }
        XCTAssertTrue(wrongShard.contains(q0), wrongShard)
        let unlisted = try error { _, map in map[q0] = nil }
        XCTAssertTrue(unlisted.contains(q0) && unlisted.contains("does not list"), unlisted)
        let escape = try error { _, map in map[q0] = "../x.safetensors" }
        XCTAssertTrue(escape.contains("same folder"), escape)
        XCTAssertEqual(try error { _, _ in }, "no error")
    }

    func testUnsupportedConfigKeysAreErrorsNamingTheKey() throws {
        let (dir, _) = try makeShardedFolder()
        let url = dir.appendingPathComponent("config.json")
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        for (key, value, expect) in [
            ("rope_scaling", ["rope_type": "yarn", "factor": 8.0] as Any, "rope_scaling has rope_type \"yarn\""),
            ("rope_scaling", ["rope_type": "llama3", "factor": 8.0] as Any, "rope_scaling has rope_type \"llama3\" without"),
            ("use_sliding_window", true as Any, "use_sliding_window"),
            ("hidden_act", "gelu" as Any, "hidden_act"),
            ("model_type", "mistral" as Any, "model_type"),
            ("layer_types", ["full_attention", "sliding_attention"] as Any, "layer_types"),
        ] {
            var j = original
            j[key] = value
            try JSONSerialization.data(withJSONObject: j).write(to: url)
            XCTAssertThrowsError(try Checkpoint.load(from: dir), key) { error in
                XCTAssertTrue("\(error)".contains(url.path) && "\(error)".contains(expect), "\(error)")
            }
        }
    }

    // MARK: Against transformers (venv)

    struct Reference: Decodable {
        var ids: [Int32]
        var logits: [Float]
        var prompt: [Int32]
        var generated: [Int32]
    }

    func makeFixture(_ python: Python, arch: String, extra: [String]) throws -> URL {
        let dir = try temporaryDirectory().appendingPathComponent(arch)
        try python.run(arguments: [Self.root.appendingPathComponent("scripts/make_hf_fixtures.py").path, "model", dir.path, "--arch", arch] + extra)
        return dir
    }

    /// Logits within 1e-4 of the largest |logit| (fp32 vs fp32, different summation orders), greedy
    /// generations identical, with the BPE tokenizer giving the reference ids; then saved by Ponder
    /// and loaded back by transformers with the same logits.
    func testQwen2AndLlamaMatchTransformers() throws {
        let python = try Python.require(["torch", "transformers", "tokenizers", "safetensors"])
        for (arch, extra) in [("qwen2", ["--dtype", "float32"]), ("llama", ["--dtype", "bfloat16", "--shards", "3"])] {
            let dir = try makeFixture(python, arch: arch, extra: extra)
            let ref = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: dir.appendingPathComponent("reference.json")))
            let (policy, tokenizer, _) = try Checkpoint.load(from: dir)
            XCTAssertTrue(tokenizer is BPETokenizer)
            XCTAssertEqual(policy.config.hasQKVBias, arch == "qwen2")
            XCTAssertEqual(policy.config.kvHeadCount, 2)
            XCTAssertEqual(policy.config.ropeScaling?.factor, arch == "llama" ? 4 : nil)
            XCTAssertEqual(try tokenizer.encode("What is 12+30? <think>\n12+30=42\n</think>\n<answer>\n42\n</answer>").map(Int32.init), ref.ids)
            XCTAssertEqual(try tokenizer.encode("Café 2024: it's <think>").map(Int32.init), ref.prompt)
            let logits = Autograd.noGrad { policy.forward(ids: ref.ids, batch: 1, time: ref.ids.count) }
            let scale = ref.logits.map(abs).max()!
            let diff = zip(logits.array, ref.logits).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(diff, 1e-4 * scale, "\(arch): max |Δlogit| \(diff) of max |logit| \(scale)")
            print("\(arch): max |Δlogit| \(diff) of max |logit| \(scale)")
            var rng = RNG(seed: 0)
            let greedy = Sampler.sample(policy: policy, prompts: [ref.prompt], group: 2, options: SamplingOptions(maxNewTokens: ref.generated.count, greedy: true),
                                        stopTokens: [], padToken: Int32(tokenizer.pad), rng: &rng)
            XCTAssertEqual(greedy[0].tokens, ref.generated, arch)

            // Save with Ponder, load with transformers: same logits.
            let saved = dir.deletingLastPathComponent().appendingPathComponent(arch + "-saved")
            try Checkpoint.save(policy: policy, tokenizer: tokenizer, to: saved)
            let out = try python.run(script: """
                import json, sys, torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
                m, info = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32, output_loading_info=True)
                bad = {k: v for k, v in info.items() if v}
                assert not bad, bad
                tok = AutoTokenizer.from_pretrained(sys.argv[1])
                ids = json.loads(sys.argv[2])
                with torch.no_grad():
                    logits = m(torch.tensor([ids])).logits[0].reshape(-1).tolist()
                print(json.dumps({"type": m.config.model_type, "logits": logits, "ids": tok("Café 2024: it's <think>", add_special_tokens=False)["input_ids"]}))
                """, arguments: [saved.path, "\(ref.ids)"])
            struct Back: Decodable { var type: String; var logits: [Float]; var ids: [Int32] }
            let back = try JSONDecoder().decode(Back.self, from: Data(out.utf8))
            XCTAssertEqual(back.type, arch)
            XCTAssertEqual(back.ids, ref.prompt)
            let backDiff = zip(back.logits, ref.logits).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(backDiff, 1e-4 * scale, "\(arch) saved by Ponder, loaded by transformers")
        }
    }
}
