// Ponder's LoRA adapters against `peft` itself: `PeftModel.from_pretrained(base, folder)` loads a
// Ponder checkpoint's adapter_config.json and adapter_model.safetensors and gives Ponder's logits, and
// Ponder's merged export gives them too. Skips without torch, transformers and peft (the peer venv).

import Foundation
import XCTest

import Autograd
import Model

final class PEFTCrossCheckTests: XCTestCase {
    func testPeftLoadsOurAdaptersAndMatchesOurLogitsMergedOrNot() throws {
        let python = try Python.require(["torch", "transformers", "peft"])
        let tokenizer = CharTokenizer()
        var cfg = PolicyConfig(vocabSize: tokenizer.vocabSize, dModel: 32, layers: 2, heads: 4, ffDim: 48, maxContext: 64)
        cfg.initStd = 0.2
        var rng = RNG(seed: 4, stream: "init")
        let policy = Policy(config: cfg, rng: &rng)
        var loraRNG = RNG(seed: 5)
        // trained-looking adapters (B ≠ 0) on a subset of modules, rank 4, α 16
        try policy.addLoRA(LoRAConfig(rank: 4, alpha: 16, targetModules: ["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"])) { _, shape in
            Tensor.randn(shape, std: 0.2, rng: &loraRNG, requiresGrad: true)
        }
        let dir = try temporaryDirectory()
        try Checkpoint.save(policy: policy, tokenizer: tokenizer, to: dir)
        let merged = try temporaryDirectory()
        let reloaded = try Checkpoint.load(from: dir).policy
        XCTAssertEqual(reloaded.loraTensors.map(\.0), policy.loraTensors.map(\.0))
        reloaded.mergeLoRA()
        try Checkpoint.save(policy: reloaded, tokenizer: tokenizer, to: merged)
        XCTAssertFalse(FileManager.default.fileExists(atPath: merged.appendingPathComponent("adapter_config.json").path))

        let ids = try tokenizer.encode("<|bos|>What is 12+30?\n<think>")
        let ours = Autograd.noGrad { policy.forward(ids: ids.map(Int32.init), batch: 1, time: ids.count).array }
        let output = try python.run(
            script: """
                import json, sys, torch
                from transformers import AutoModelForCausalLM
                from peft import PeftModel
                ids = torch.tensor([json.loads(sys.argv[3])])
                base = AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32)
                model = PeftModel.from_pretrained(base, sys.argv[1]).eval()
                with torch.no_grad():
                    adapted = model(ids).logits[0].flatten().tolist()
                    merged = AutoModelForCausalLM.from_pretrained(sys.argv[2], torch_dtype=torch.float32)(ids).logits[0].flatten().tolist()
                print(json.dumps({"adapted": adapted, "merged": merged}))
                """, arguments: [dir.path, merged.path, "\(ids)"])
        let answer = try JSONDecoder().decode([String: [Float]].self, from: Data(output.utf8))
        for key in ["adapted", "merged"] {
            let theirs = try XCTUnwrap(answer[key])
            XCTAssertEqual(theirs.count, ours.count, key)
            let worst = zip(theirs, ours).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-3, "\(key): peft's logits differ from Ponder's by up to \(worst)")
        }
        // and the adapters matter: the base alone gives other logits
        let base = Autograd.noGrad { policy.withoutAdapters { policy.forward(ids: ids.map(Int32.init), batch: 1, time: ids.count).array } }
        XCTAssertGreaterThan(zip(base, ours).map { abs($0 - $1) }.max() ?? 0, 1e-2)
    }
}
