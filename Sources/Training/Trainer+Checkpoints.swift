// Checkpoints of a run, in one place: writing one (weights and tokenizer in Hugging Face layout,
// optimizer moments, trainer state, SFT's best weights while SFT runs), atomically, and reading the
// trainer's part back on resume. The best eval's copy goes to checkpoints/best (`Trainer.evaluate`).

import Autograd
import Foundation
import Model
import Runs
import Tasks

extension Trainer {
    /// Writes checkpoints/step-NNNNNN atomically (a temporary folder, then a rename), prunes old
    /// ones, and refreshes the report.
    func saveCheckpoint() throws {
        guard communicator.isWriter else { return }
        let name = Checkpoints.folderName(step: state.step)
        try saveFolder(checkpointsDirectory.appendingPathComponent(name))
        try Checkpoints.prune(in: runDirectory, keepLast: config.checkpoint.keepLast)
        try writeStatus(.running)
        _ = try? Report.write(runDirectory: runDirectory)  // a report is a view: a failure must not stop training
    }

    /// Saves weights, tokenizer, optimizer and trainer state into `folder`, replacing it atomically.
    func saveFolder(_ folder: URL) throws {
        guard communicator.isWriter else { return }
        try AtomicFile.writeFolder(folder) { tmp in
            try Checkpoint.save(policy: policy, tokenizer: baseTokenizer, to: tmp, metadata: [
                "step": "\(state.step)", Checkpoint.evalFamiliesKey: Self.evalFamilies(config).joined(separator: ","),
                Checkpoint.precisionKey: BLAS.precision.rawValue,
            ])
            var opt = SafeTensorsFile(metadata: ["step": "\(optimizer.step)"])
            for (k, v) in optimizer.stateArrays() { opt.tensors[k] = StoredTensor(shape: [v.count], data: v) }
            try opt.write(to: tmp.appendingPathComponent("optimizer.safetensors"))
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            enc.nonConformingFloatEncodingStrategy = JSONText.nonFiniteEncoding  // a NaN metric must not stop a checkpoint
            try AtomicFile.write(try enc.encode(state), to: tmp.appendingPathComponent("trainer_state.json"))
            if let best = sftBest, state.sftEnd == nil {  // SFT's best weights, for a resumed run to go on from
                var file = SafeTensorsFile(metadata: ["step": "\(state.sftPlateau?.bestStep ?? 0)"])
                for (name, t) in policy.allTensors { file.tensors[name] = StoredTensor(shape: t.shape, data: best[name] ?? t.array) }
                try file.write(to: tmp.appendingPathComponent("sft_best.safetensors"))
            }
        }
    }

    /// A checkpoint's trainer state, optimizer moments and (inside SFT) best validation weights.
    static func restore(from checkpoint: URL, policy: Policy) throws -> (TrainerState, AdamW, [String: [Float]]?) {
        let dec = JSONDecoder()
        dec.nonConformingFloatDecodingStrategy = JSONText.nonFiniteDecoding
        let state = try dec.decode(TrainerState.self, from: Data(contentsOf: checkpoint.appendingPathComponent("trainer_state.json")))
        let optimizer = AdamW(policy.parameters, lr: 0)
        let opt = try SafeTensorsFile.read(from: checkpoint.appendingPathComponent("optimizer.safetensors"))
        try optimizer.restore(opt.tensors.mapValues(\.data), step: Int(opt.metadata["step"] ?? "") ?? 0)
        let bestURL = checkpoint.appendingPathComponent("sft_best.safetensors")
        guard state.sftEnd == nil, FileManager.default.fileExists(atPath: bestURL.path) else { return (state, optimizer, nil) }
        let file = try SafeTensorsFile.read(from: bestURL)
        try file.validate(expected: policy.allTensors.map { TensorSpec($0.0, $0.1.shape) }, file: bestURL.path)
        for (name, t) in policy.allTensors { _ = try file.requireWeights(name, shape: t.shape, file: bestURL.path) }
        return (state, optimizer, file.tensors.mapValues(\.data))
    }
}
