// `ponder merge`: a LoRA checkpoint's adapters folded into its weights (W + (α/r)·B·A), written as an
// ordinary Hugging Face folder that any tool loads without peft.

import ArgumentParser
import Basics
import Foundation
import Model

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a checkpoint's LoRA adapters into its weights and write an ordinary model folder.")

    @Argument(help: "A checkpoint folder with LoRA adapters (adapter_config.json, adapter_model.safetensors).") var checkpoint: String
    @Argument(help: "The folder to write (must not exist yet).") var out: String

    func run() throws {
        let source = URL(fileURLWithPath: checkpoint), target = URL(fileURLWithPath: out)
        guard !FileManager.default.fileExists(atPath: target.path) else {
            throw ValidationError("\(out) exists already: name a new folder")
        }
        let (policy, tokenizer, metadata) = try Checkpoint.load(from: source)
        guard let lora = policy.lora else {
            throw ValidationError("\(checkpoint) has no LoRA adapters (no adapter_config.json): there is nothing to merge")
        }
        policy.mergeLoRA()
        try AtomicFile.writeFolder(target) { tmp in  // a killed merge leaves no half folder under its name
            try Checkpoint.save(policy: policy, tokenizer: tokenizer, to: tmp, metadata: metadata.filter { ["step", Checkpoint.evalFamiliesKey, Checkpoint.precisionKey].contains($0.key) })
        }
        print("merged rank-\(lora.rank) adapters (\(lora.targetModules.joined(separator: ", "))) into \(out)")
    }
}
