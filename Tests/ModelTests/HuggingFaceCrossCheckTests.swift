// Cross-checks against the Hugging Face Python libraries themselves: `tokenizers` must load our
// tokenizer.json and give the same ids, `safetensors` must load our files bit for bit (and write
// byte-identical ones), and `transformers` must load a whole checkpoint folder.
//
// The Python interpreter is $PONDER_PYTHON, else ~/.ponder-peer/bin/python (the peer venv of
// ../shared/bench/README.md), else python3. Tests skip when it lacks the packages they need.

import Foundation
import XCTest

import Autograd
import Model
import TestSupport

final class HuggingFaceCrossCheckTests: XCTestCase {
    func testTokenizersLibraryEncodesAndDecodesTheSame() throws {
        let python = try Python.require(["tokenizers"])
        let dir = try temporaryDirectory()
        let tokenizer = CharTokenizer()
        try tokenizer.save(to: dir.appendingPathComponent("tokenizer.json"))
        let every = String(String.UnicodeScalarView(CharTokenizer.defaultAlphabet))
        let texts = [
            "<|bos|>What is 12+30?\n<think>\n12+30=42\n</think>\n<answer>\n42\n</answer><|eos|>",
            every, "<<think>> <thinker> </answer </answer><|pad|><|pad|>", "  \n\n\\\"'", "",
        ]
        try JSONSerialization.data(withJSONObject: texts + ["caf\u{E9}"]).write(
            to: dir.appendingPathComponent("texts.json"))
        let output = try python.run(
            script: """
                import json, sys
                from tokenizers import Tokenizer
                tok = Tokenizer.from_file(sys.argv[1] + "/tokenizer.json")
                out = []
                for text in json.load(open(sys.argv[1] + "/texts.json")):
                    try:
                        ids = tok.encode(text).ids
                    except Exception as e:
                        out.append({"error": str(e)})
                        continue
                    out.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                                "skipped": tok.decode(ids, skip_special_tokens=True)})
                print(json.dumps({"vocab_size": tok.get_vocab_size(), "results": out}))
                """, arguments: [dir.path])
        let answer = try JSONDecoder().decode(TokenizerAnswer.self, from: Data(output.utf8))
        XCTAssertEqual(answer.vocab_size, tokenizer.vocabSize)
        for (text, result) in zip(texts, answer.results) {
            let ids = try tokenizer.encode(text)
            XCTAssertEqual(result.ids, ids, text)
            XCTAssertEqual(result.decoded, text)
            XCTAssertEqual(result.skipped, tokenizer.decode(ids, skipSpecial: true))
        }
        XCTAssertNotNil(answer.results.last?.error, "text outside the alphabet fails in Python too")
    }

    func testSafetensorsLibraryReadsOurFilesAndWritesTheSameBytes() throws {
        let python = try Python.require(["safetensors", "numpy"])
        let dir = try temporaryDirectory()
        var sample = SafeTensorsTests.sample
        // One key: the Rust writer emits __metadata__ from a HashMap, in no fixed order.
        sample.metadata = ["ponder": "step \"7\"\n"]
        try sample.write(to: dir.appendingPathComponent("ours.safetensors"))
        let output = try python.run(
            script: """
                import json, sys
                import numpy as np
                from safetensors import safe_open
                from safetensors.numpy import load_file, save_file
                d = sys.argv[1]
                tensors = load_file(d + "/ours.safetensors")
                with safe_open(d + "/ours.safetensors", framework="numpy") as f:
                    metadata = f.metadata()
                save_file(tensors, d + "/theirs.safetensors", metadata=metadata)
                half = np.array([1, -2, 65504, 2**-24, 0.1, -0.0, np.inf], dtype=np.float16).reshape(7, 1)
                save_file({"half": half}, d + "/half.safetensors")
                print(json.dumps({
                    "metadata": metadata,
                    "tensors": {k: {"shape": list(a.shape), "dtype": str(a.dtype),
                                    "bits": a.reshape(-1).view(np.uint32).tolist()} for k, a in tensors.items()},
                    "half_bits": half.astype(np.float32).reshape(-1).view(np.uint32).tolist(),
                }))
                """, arguments: [dir.path])
        let answer = try JSONDecoder().decode(SafetensorsAnswer.self, from: Data(output.utf8))
        XCTAssertEqual(answer.metadata, sample.metadata)
        XCTAssertEqual(Set(answer.tensors.keys), Set(sample.tensors.keys))
        for (name, tensor) in sample.tensors {
            XCTAssertEqual(answer.tensors[name]?.dtype, "float32")
            XCTAssertEqual(answer.tensors[name]?.shape, tensor.shape, name)
            XCTAssertEqual(answer.tensors[name]?.bits, tensor.data.map(\.bitPattern), name)
        }
        XCTAssertEqual(
            try Data(contentsOf: dir.appendingPathComponent("theirs.safetensors")), sample.serialized(),
            "safetensors.numpy.save_file writes exactly our bytes")
        let half = try SafeTensorsFile.read(from: dir.appendingPathComponent("half.safetensors"))
        XCTAssertEqual(half.tensors["half"]?.shape, [7, 1])
        XCTAssertEqual(half.tensors["half"]?.data.map(\.bitPattern), answer.half_bits)
    }

    func testTransformersLoadsACheckpointFolder() throws {
        let python = try Python.require(["torch", "transformers", "tokenizers"])
        let dir = try temporaryDirectory()
        let tokenizer = CharTokenizer()
        let config = LlamaConfigJSON(
            vocabSize: tokenizer.vocabSize, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2,
            numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 64, tieWordEmbeddings: true,
            bosTokenId: tokenizer.bos, eosTokenId: tokenizer.eos, padTokenId: tokenizer.pad)
        var rng = RNG(seed: 11)
        var weights = SafeTensorsFile(metadata: ["format": "pt"])
        for spec in config.tensorSpecs() {
            let count = spec.shape.reduce(1, *)
            let data =
                spec.shape.count == 1
                ? [Float](repeating: 1, count: count)
                : (0..<count).map { _ in Float(Int(rng.next() % 2001) - 1000) / 5000 }
            weights.tensors[spec.name] = StoredTensor(shape: spec.shape, data: data)
        }
        try config.write(to: dir.appendingPathComponent("config.json"))
        try weights.write(to: dir.appendingPathComponent("model.safetensors"))
        try tokenizer.save(to: dir.appendingPathComponent("tokenizer.json"))
        try tokenizer.saveConfig(to: dir.appendingPathComponent("tokenizer_config.json"))

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/hf_check.py")
        let output = try python.run(arguments: [script.path, dir.path, "--prompt", "12+30", "--max-new", "8"])
        let answer = try JSONDecoder().decode(CheckAnswer.self, from: Data(output.utf8))
        XCTAssertEqual(answer.prompt_ids, [tokenizer.bos] + (try tokenizer.encode("12+30\n")))
        XCTAssertTrue((1...8).contains(answer.new_ids.count), "\(answer.new_ids)")
        XCTAssertTrue(answer.new_ids.allSatisfy { (0..<tokenizer.vocabSize).contains($0) })
        XCTAssertEqual(answer.text, tokenizer.decode(answer.new_ids, skipSpecial: true))
        XCTAssertEqual(answer.text_with_special, tokenizer.decode(answer.new_ids))

        let text = "<|bos|>a , b .\n<think>\n1 + 1\n</think>"
        let auto = try python.run(
            script: """
                import json, sys
                from transformers import AutoTokenizer
                tok = AutoTokenizer.from_pretrained(sys.argv[1])
                ids = tok(sys.argv[2], add_special_tokens=False)["input_ids"]
                print(json.dumps([tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, ids, tok.decode(ids)]))
                """, arguments: [dir.path, text])
        let expected = "[1, 2, 0, \(try tokenizer.encode(text)), \(JSONText.string(text))]\n"
        XCTAssertEqual(auto, expected, "transformers.AutoTokenizer agrees on specials, ids and decoding")
    }

    /// A policy saved by `Checkpoint.save` loads as a LlamaForCausalLM and generates, greedily, the
    /// very tokens Ponder's KV-cached sampler generates.
    func testTransformersGreedyGenerationMatchesPondersSampler() throws {
        let python = try Python.require(["torch", "transformers", "tokenizers"])
        let dir = try temporaryDirectory()
        let tokenizer = CharTokenizer()
        for tied in [false, true] {
            var config = PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 32, layers: 2, heads: 4, ffDim: 48,
                                      maxContext: 64, tieEmbeddings: tied)
            config.initStd = 0.25  // wide logits, so argmax ties cannot decide the comparison
            var rng = RNG(seed: tied ? 5 : 6, stream: "init")
            let policy = Policy(config: config, rng: &rng)
            try Checkpoint.save(policy: policy, tokenizer: tokenizer, to: dir)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("scripts/hf_check.py")
            let output = try python.run(arguments: [script.path, dir.path, "--prompt", "What is 12+30?", "--max-new", "24"])
            let answer = try JSONDecoder().decode(CheckAnswer.self, from: Data(output.utf8))
            let prompt = try tokenizer.encodePrompt("What is 12+30?")
            XCTAssertEqual(answer.prompt_ids, prompt)
            var sampling = RNG(seed: 0)
            let ours = Sampler.sample(
                policy: policy, prompts: [prompt.map(Int32.init)], group: 1,
                options: SamplingOptions(maxNewTokens: 24, greedy: true), stopTokens: tokenizer.stopTokens,
                padToken: Int32(tokenizer.pad), rng: &sampling)
            XCTAssertEqual(ours[0].tokens.map(Int.init), answer.new_ids, "tied=\(tied)")
        }
    }

    private struct TokenizerAnswer: Decodable {
        struct Result: Decodable {
            var ids: [Int]?
            var decoded: String?
            var skipped: String?
            var error: String?
        }
        var vocab_size: Int
        var results: [Result]
    }

    private struct SafetensorsAnswer: Decodable {
        struct Tensor: Decodable {
            var shape: [Int]
            var dtype: String
            var bits: [UInt32]
        }
        var metadata: [String: String]
        var tensors: [String: Tensor]
        var half_bits: [UInt32]
    }

    private struct CheckAnswer: Decodable {
        var prompt_ids: [Int]
        var new_ids: [Int]
        var text: String
        var text_with_special: String
    }
}

/// The interpreter the cross-checks run in (Tests/TestSupport).
typealias Python = PeerPython

extension PeerPython {
    /// The first candidate interpreter that imports all of `modules`; skips the test if none does.
    static func require(_ modules: [String]) throws -> PeerPython {
        guard let python = find(importing: modules) else {
            throw XCTSkip("no Python with \(modules.joined(separator: ", ")) (tried \(candidates())); set PONDER_PYTHON")
        }
        return python
    }
}
