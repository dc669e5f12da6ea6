// End-to-end runs of the trainer on a tiny model: it learns, it writes the run folder, and a run
// stopped mid-way resumes to exactly the metrics and weights of an uninterrupted one.

import Autograd
import Foundation
import Model
import Runs
import Training
import TestSupport
import XCTest

final class TrainerTests: XCTestCase {
    /// Where the committed held-out sets live (the package root's datasets/).
    static let datasets = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("datasets").path

    static func tinyConfig() throws -> TrainConfig {
        try ConfigLoader.parse("""
            seed: 3
            threads: 1
            model: {d_model: 32, layers: 1, heads: 2, ff_dim: 64, max_context: 64}
            data: {families: [add], datasets: "\(datasets)"}
            sft: {steps: 30, num_traces: 16, levels: [1], batch_size: 8, learning_rate: 3.0e-3, validation_per_level: 8, eval_every: 10, patience: 2}
            grpo: {steps: 4, prompts_per_step: 2, num_generations: 4, max_completion_length: 40, beta: 0.04, num_iterations: 2}
            optimizer: {warmup_steps: 2}
            eval: {every: 2, levels: [1], limit_per_level: 4}
            checkpoint: {every: 2, keep_last: 2}
            logging: {completions_per_step: 2}
            """)
    }

    /// metrics.jsonl without the wall-clock fields, which differ between any two runs.
    func deterministicMetrics(_ run: URL) throws -> [String] { try Self.deterministicMetrics(run) }

    /// metrics.jsonl without the wall-clock fields (for other suites).
    static func deterministicMetrics(_ run: URL) throws -> [String] {
        try String(contentsOf: MetricsLog.metricsURL(run), encoding: .utf8).split(separator: "\n").map { line in
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let kept = obj.filter { $0.key != "step_time" && $0.key != "tokens_per_s" }
            return String(decoding: try JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    func testTrainingLearnsWritesTheRunFolderAndMovesEveryParameter() throws {
        let run = temporaryRun()
        let cfg = try Self.tinyConfig()
        var rng = RNG(seed: cfg.seed, stream: "init")
        let initial = Policy(config: cfg.policyConfig(vocabSize: CharTokenizer().vocabSize), rng: &rng)
        let trainer = try Trainer(config: cfg, runDirectory: run, resume: false)
        try trainer.run()
        let rows = try RunReader(runDirectory: run).metrics().rows
        let sftLoss = rows.filter { $0.stage == "sft" }.compactMap { $0.values["loss"] }
        XCTAssertEqual(sftLoss.count, 30)
        XCTAssertLessThan(sftLoss.suffix(5).reduce(0, +) / 5, 0.7 * sftLoss.prefix(5).reduce(0, +) / 5, "SFT loss must fall")
        let grpo = rows.filter { $0.stage == "grpo" }
        XCTAssertEqual(grpo.map(\.step), [31, 32, 33, 34])
        for key in ["reward", "reward_std", "rewards/correctness/mean", "rewards/format/mean", "frac_reward_zero_std",
                    "completions/mean_length", "completions/clipped_ratio", "learning_rate", "step_time", "tokens_per_s"] {
            XCTAssertNotNil(grpo.last?.values[key], key)
        }
        let evals = rows.filter { $0.stage == "eval" }
        XCTAssertEqual(evals.map(\.step), [30, 32, 34], "baseline eval at GRPO step 0, every 2 steps, and at the end")
        XCTAssertNotNil(evals.first?.values["eval/add/L1/pass@1"])
        let names = try FileManager.default.contentsOfDirectory(atPath: Checkpoints.directory(run).path).filter { !$0.hasPrefix(".") }
        XCTAssertEqual(Set(names).intersection(["sft-final", "step-000032", "step-000034"]).count, 3, "\(names)")
        XCTAssertEqual(Checkpoints.list(in: run).count, 2, "keep_last prunes older step checkpoints")
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("report.html").path))
        XCTAssertEqual(try RunStatus.read(from: run).state, .finished)
        for ((name, a), (_, b)) in zip(initial.namedParameters, trainer.policy.namedParameters) {
            XCTAssertNotEqual(a.array, b.array, "\(name) never moved")
        }
        // The final checkpoint loads and holds the trained weights, and records the families its run evaluated
        // on and the precision it sampled in (what `ponder eval` evaluates it on, and in, by default).
        let (final, _, metadata) = try Checkpoint.load(from: Checkpoints.latest(in: run)!.url)
        XCTAssertEqual(final.namedParameters.last!.1.array, trainer.policy.namedParameters.last!.1.array)
        XCTAssertEqual(metadata[Checkpoint.evalFamiliesKey], "add")
        XCTAssertEqual(metadata[Checkpoint.precisionKey], BLAS.precision.rawValue)
        XCTAssertEqual(try Checkpoint.load(from: Checkpoints.directory(run).appendingPathComponent("sft-final")).metadata[
            Checkpoint.evalFamiliesKey], "add")
    }

    func testResumedRunMatchesAnUninterruptedOne() throws {
        let cfg = try Self.tinyConfig()
        let whole = temporaryRun()
        try Trainer(config: cfg, runDirectory: whole, resume: false).run()

        // Stop after step 32 (inside GRPO); then leave the debris of a kill mid-checkpoint: a
        // half-written checkpoint folder, a truncated metrics line and a stale status.
        let broken = temporaryRun()
        let first = try Trainer(config: cfg, runDirectory: broken, resume: false)
        first.stopAfterStep = 32
        try first.run()
        let ckpts = Checkpoints.directory(broken)
        try FileManager.default.createDirectory(at: ckpts.appendingPathComponent(".tmp-step-000034-999"), withIntermediateDirectories: true)
        try Data("{\"step\":".utf8).write(to: ckpts.appendingPathComponent(".tmp-step-000034-999/model.safetensors"))
        let metrics = try FileHandle(forWritingTo: MetricsLog.metricsURL(broken))
        metrics.seekToEndOfFile()
        metrics.write(Data("{\"step\":33,\"stage\":\"grpo\",\"rew".utf8))
        try metrics.close()

        try Trainer(config: cfg, runDirectory: broken, resume: true).run()
        XCTAssertEqual(try deterministicMetrics(broken), try deterministicMetrics(whole))
        let a = try Checkpoint.load(from: Checkpoints.latest(in: whole)!.url).policy
        let b = try Checkpoint.load(from: Checkpoints.latest(in: broken)!.url).policy
        for ((name, x), (_, y)) in zip(a.namedParameters, b.namedParameters) {
            XCTAssertEqual(x.array.map(\.bitPattern), y.array.map(\.bitPattern), name)
        }
        XCTAssertEqual(try String(contentsOf: MetricsLog.completionsURL(broken), encoding: .utf8),
                       try String(contentsOf: MetricsLog.completionsURL(whole), encoding: .utf8))
    }

    /// `--resume` on a finished run does nothing with the same config, and with more GRPO steps trains
    /// on from the final checkpoint, to the bits of a run configured that long from the start (with a
    /// constant step size, nothing else depends on the length).
    func testFinishedRunTrainsOnWhenAskedForMoreGRPOSteps() throws {
        var cfg = try Self.tinyConfig()
        cfg.grpo.schedule = .constant
        var longer = cfg
        longer.grpo.steps = 6
        let whole = temporaryRun()
        try Trainer(config: longer, runDirectory: whole, resume: false).run()

        let run = temporaryRun()
        try Trainer(config: cfg, runDirectory: run, resume: false).run()
        try ConfigLoader.yaml(cfg).write(to: RunFolder.savedConfigURL(run), atomically: true, encoding: .utf8)
        XCTAssertTrue(try RunFolder.open(run, config: cfg, resume: true, isWriter: true).finished)
        var shorter = cfg
        shorter.grpo.steps = 3
        XCTAssertTrue(try RunFolder.open(run, config: shorter, resume: true, isWriter: true).finished)
        XCTAssertFalse(try RunFolder.open(run, config: longer, resume: true, isWriter: true).finished)
        try ConfigLoader.yaml(longer).write(to: RunFolder.savedConfigURL(run), atomically: true, encoding: .utf8)
        try Trainer(config: longer, runDirectory: run, resume: true).run()

        XCTAssertEqual(try RunStatus.read(from: run).step, 36)
        XCTAssertEqual(try deterministicMetrics(run), try deterministicMetrics(whole))
        let a = try Checkpoint.load(from: Checkpoints.latest(in: whole)!.url).policy
        let b = try Checkpoint.load(from: Checkpoints.latest(in: run)!.url).policy
        for ((name, x), (_, y)) in zip(a.namedParameters, b.namedParameters) {
            XCTAssertEqual(x.array.map(\.bitPattern), y.array.map(\.bitPattern), name)
        }
        XCTAssertTrue(try RunFolder.open(run, config: longer, resume: true, isWriter: true).finished)
        // Killed while training on, then resumed without the larger count: refused, not ended early.
        try RunStatus.write(RunStatus(state: .running, step: 36, totalSteps: 36, stage: "grpo"), to: run)
        XCTAssertThrowsError(try Trainer(config: cfg, runDirectory: run, resume: true)) { e in
            XCTAssertEqual((e as? ConfigError)?.key, "grpo.steps")
            XCTAssertTrue("\(e)".contains("--set grpo.steps=6"), "\(e)")
        }
    }

    /// `precision: bf16` (AMX or avx512_bf16) trains too: the SFT loss falls, a resumed run reproduces an
    /// uninterrupted one bit for bit, and its metrics are not the float32 run's.
    func testBF16RunLearnsAndResumesExactly() throws {
        try XCTSkipUnless(MatmulPrecision.bf16Unavailable == nil, MatmulPrecision.bf16Unavailable ?? "")
        addTeardownBlock { BLAS.precision = .f32 }
        var cfg = try Self.tinyConfig()
        let f32 = temporaryRun()
        try Trainer(config: cfg, runDirectory: f32, resume: false).run()
        cfg.precision = .bf16
        let whole = temporaryRun()
        try Trainer(config: cfg, runDirectory: whole, resume: false).run()
        XCTAssertEqual(BLAS.precision, .bf16)
        let rows = try RunReader(runDirectory: whole).metrics().rows
        let sftLoss = rows.filter { $0.stage == "sft" }.compactMap { $0.values["loss"] }
        XCTAssertLessThan(sftLoss.suffix(5).reduce(0, +) / 5, 0.7 * sftLoss.prefix(5).reduce(0, +) / 5, "SFT loss must fall")
        XCTAssertNotEqual(try deterministicMetrics(whole), try deterministicMetrics(f32))
        let broken = temporaryRun()
        let first = try Trainer(config: cfg, runDirectory: broken, resume: false)
        first.stopAfterStep = 32
        try first.run()
        try Trainer(config: cfg, runDirectory: broken, resume: true).run()
        XCTAssertEqual(try deterministicMetrics(broken), try deterministicMetrics(whole))
    }

    /// On an AVX-512 CPU every float32 product of a run is Ponder's own, so the kernel OpenBLAS is told
    /// to use changes no bit: the binary run with `OPENBLAS_CORETYPE=Haswell` and with the variable
    /// unset (OpenBLAS then picks its AVX-512 kernel) gives the same metrics and weights.
    func testOpenBLASKernelChoiceChangesNoBitOnAVX512() throws {
        guard let binary = Repository.ponderBinary else { throw XCTSkip(Repository.noBinary) }
        try XCTSkipUnless(NativeKernels.trainingGEMM && ProcessInfo.processInfo.environment["PONDER_GEMM"] == nil,
                          "needs Ponder's AVX-512 GEMM for training (an AVX-512 CPU, PONDER_GEMM unset)")
        let cfg = try Self.tinyConfig()
        let dir = temporaryRun()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let configURL = dir.appendingPathComponent("tiny.yaml")
        try ConfigLoader.yaml(cfg).write(to: configURL, atomically: true, encoding: .utf8)
        func run(_ name: String, coretype: String?) throws -> URL {
            let out = dir.appendingPathComponent(name)
            let p = Process()
            p.executableURL = binary
            p.arguments = ["train", configURL.path, "--run-dir", out.path]
            var env = ProcessInfo.processInfo.environment
            env["OPENBLAS_CORETYPE"] = coretype
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, name)
            return out
        }
        let haswell = try run("haswell", coretype: "Haswell"), unset = try run("unset", coretype: nil)
        XCTAssertEqual(try deterministicMetrics(haswell), try deterministicMetrics(unset))
        let a = try Checkpoint.load(from: Checkpoints.latest(in: haswell)!.url).policy
        let b = try Checkpoint.load(from: Checkpoints.latest(in: unset)!.url).policy
        for ((name, x), (_, y)) in zip(a.namedParameters, b.namedParameters) {
            XCTAssertEqual(x.array.map(\.bitPattern), y.array.map(\.bitPattern), name)
        }
    }

    /// The real thing: the `ponder` binary is killed with SIGKILL while it writes a checkpoint every
    /// step, then `ponder train --resume` finishes the run. Metrics and weights must equal an
    /// uninterrupted run's.
    func testKillNineThenResumeMatchesAnUninterruptedRun() throws {
        guard let binary = Repository.ponderBinary else { throw XCTSkip(Repository.noBinary) }
        var cfg = try Self.tinyConfig()
        cfg.checkpoint.every = 1
        let dir = temporaryRun()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let configURL = dir.appendingPathComponent("tiny.yaml")
        try ConfigLoader.yaml(cfg).write(to: configURL, atomically: true, encoding: .utf8)
        let killed = dir.appendingPathComponent("killed"), whole = dir.appendingPathComponent("whole")
        try Trainer(config: cfg, runDirectory: whole, resume: false).run()

        func ponder(_ args: [String]) throws -> Process {
            let p = Process()
            p.executableURL = binary
            p.arguments = ["train", configURL.path, "--run-dir", killed.path] + args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        let first = try ponder([])
        let target = Checkpoints.directory(killed).appendingPathComponent("step-000031")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: target.path) && first.isRunning && Date() < deadline { usleep(2_000) }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        XCTAssertEqual(first.terminationReason, .uncaughtSignal, "the run finished before it could be killed")
        let second = try ponder(["--resume"])
        second.waitUntilExit()
        XCTAssertEqual(second.terminationStatus, 0)
        XCTAssertEqual(try deterministicMetrics(killed), try deterministicMetrics(whole))
        let a = try Checkpoint.load(from: Checkpoints.latest(in: whole)!.url).policy
        let b = try Checkpoint.load(from: Checkpoints.latest(in: killed)!.url).policy
        for ((name, x), (_, y)) in zip(a.namedParameters, b.namedParameters) {
            XCTAssertEqual(x.array.map(\.bitPattern), y.array.map(\.bitPattern), name)
        }
    }

    /// A run stopped inside SFT, after a validation check whose weights were kept, resumes to the
    /// uninterrupted run's metrics and weights (the kept weights travel in the checkpoint).
    func testResumeInsideSFTKeepsTheBestValidationWeights() throws {
        let cfg = try Self.tinyConfig()
        let whole = temporaryRun()
        try Trainer(config: cfg, runDirectory: whole, resume: false).run()
        let rows = try RunReader(runDirectory: whole).metrics().rows
        XCTAssertEqual(rows.filter { $0.stage == "sft" && $0.values["val/pass@1"] != nil }.map(\.step), [10, 20, 30])
        let broken = temporaryRun()
        let first = try Trainer(config: cfg, runDirectory: broken, resume: false)
        first.stopAfterStep = 14
        try first.run()
        XCTAssertTrue(FileManager.default.fileExists(atPath: Checkpoints.latest(in: broken)!.url.appendingPathComponent("sft_best.safetensors").path))
        try Trainer(config: cfg, runDirectory: broken, resume: true).run()
        XCTAssertEqual(try deterministicMetrics(broken), try deterministicMetrics(whole))
        let a = try Checkpoint.load(from: Checkpoints.directory(whole).appendingPathComponent("sft-final")).policy
        let b = try Checkpoint.load(from: Checkpoints.directory(broken).appendingPathComponent("sft-final")).policy
        for ((name, x), (_, y)) in zip(a.namedParameters, b.namedParameters) {
            XCTAssertEqual(x.array.map(\.bitPattern), y.array.map(\.bitPattern), name)
        }
    }

    /// A checkpoint whose kept SFT weights lack a tensor is refused on resume, naming the file.
    func testResumeRefusesKeptSFTWeightsWithoutEveryTensor() throws {
        let cfg = try Self.tinyConfig()
        let run = temporaryRun()
        let first = try Trainer(config: cfg, runDirectory: run, resume: false)
        first.stopAfterStep = 14
        try first.run()
        let url = Checkpoints.latest(in: run)!.url.appendingPathComponent("sft_best.safetensors")
        var file = try SafeTensorsFile.read(from: url)
        file.tensors["model.norm.weight"] = nil
        try file.write(to: url)
        XCTAssertThrowsError(try Trainer(config: cfg, runDirectory: run, resume: true)) { e in
            XCTAssertTrue("\(e)".contains("sft_best.safetensors") && "\(e)".contains("model.norm.weight"), "\(e)")
        }
    }

    /// SFT stops at the plateau of its validation checks and goes on from the best check's weights.
    func testSFTStopsAtItsPlateauAndKeepsTheBestWeights() throws {
        var cfg = try Self.tinyConfig()
        cfg.sft.steps = 400
        cfg.sft.evalEvery = 5
        cfg.sft.patience = 2
        cfg.grpo.steps = 1
        let run = temporaryRun()
        let trainer = try Trainer(config: cfg, runDirectory: run, resume: false)
        try trainer.run()
        let rows = try RunReader(runDirectory: run).metrics().rows
        let checks = rows.filter { $0.stage == "sft" && $0.values["val/pass@1"] != nil }
        let sftSteps = rows.filter { $0.stage == "sft" }.count
        XCTAssertLessThan(sftSteps, 400, "a tiny model plateaus long before the cap")
        var tracker = PlateauTracker()
        var stop: Int?
        for c in checks where stop == nil {
            if tracker.check(step: c.step, score: c.values["val/pass@1"]!, loss: c.values["val/loss"]!, patience: 10,
                                smoothing: cfg.sft.smoothing) == .plateau { stop = c.step }
        }
        XCTAssertEqual(stop, sftSteps, "SFT ended where the rule says")
        XCTAssertEqual(trainer.state.sftEnd, sftSteps)
        XCTAssertEqual(rows.filter { $0.stage == "grpo" }.map(\.step), [sftSteps + 1], "GRPO steps follow the SFT steps run")
        // The SFT result is the best check's policy: re-checking sft-final reproduces the best score and loss.
        let final = try Checkpoint.load(from: Checkpoints.directory(run).appendingPathComponent("sft-final")).policy
        let check = try Trainer(config: cfg, runDirectory: temporaryRun(), resume: false)
        let loss = Autograd.noGrad {
            SFT.loss(policy: final, batch: check.validationExamples, pad: Int32(check.tokenizer.pad)).0.item
        }
        XCTAssertEqual(Double(loss), tracker.bestLoss!, accuracy: 1e-4)
    }

    /// grpo.sft_coef: each GRPO update also takes the loss of a batch of the cold start's traces (logged
    /// as sft/loss), the traces depend on the seed and step alone, so a run stopped inside GRPO resumes
    /// to the uninterrupted run's metrics and weights; and the term moves the weights.
    func testSFTCoefJoinsTheUpdateAndResumesExactly() throws {
        var cfg = try Self.tinyConfig()
        cfg.grpo.sftCoef = 0.5
        cfg.grpo.sftBatchSize = 4
        let whole = temporaryRun(), broken = temporaryRun(), plain = temporaryRun()
        try Trainer(config: cfg, runDirectory: whole, resume: false).run()
        let first = try Trainer(config: cfg, runDirectory: broken, resume: false)
        first.stopAfterStep = 33
        try first.run()
        try Trainer(config: cfg, runDirectory: broken, resume: true).run()
        XCTAssertEqual(try deterministicMetrics(broken), try deterministicMetrics(whole))
        // Every step takes the traces' loss, with or without groups that disagree.
        let rows = try RunReader(runDirectory: whole).metrics().rows.filter { $0.stage == "grpo" }
        XCTAssertEqual(rows.count, 4)
        for row in rows { XCTAssertGreaterThan(try XCTUnwrap(row.values["sft/loss"]), 0) }
        var off = cfg
        off.grpo.sftCoef = 0
        try Trainer(config: off, runDirectory: plain, resume: false).run()
        let a = try Checkpoint.load(from: Checkpoints.latest(in: whole)!.url).policy
        let b = try Checkpoint.load(from: Checkpoints.latest(in: broken)!.url).policy
        let c = try Checkpoint.load(from: Checkpoints.latest(in: plain)!.url).policy
        for ((name, x), (_, y)) in zip(a.namedParameters, b.namedParameters) {
            XCTAssertEqual(x.array.map(\.bitPattern), y.array.map(\.bitPattern), name)
        }
        XCTAssertTrue(a.namedParameters.map { $0.1.array } != c.namedParameters.map { $0.1.array }, "sft_coef changed nothing")
        XCTAssertNil(try RunReader(runDirectory: plain).metrics().rows.first { $0.values["sft/loss"] != nil })

        cfg.sft.numTraces = 0
        cfg.sft.steps = 0
        XCTAssertThrowsError(try Trainer(config: cfg, runDirectory: temporaryRun(), resume: false)) { error in
            XCTAssertTrue("\(error)".contains("grpo.sft_coef"), "\(error)")
        }
    }

    /// When no group's rewards differ, dynamic sampling keeps none, and the step still runs and logs.
    /// With extra rounds (DAPO's sampling until the batch is full, capped as verl's max_num_gen_batches)
    /// a step samples 1 + max_resample_rounds times, each round for the prompts still missing.
    func testAStepWithoutSignalStillRuns() throws {
        var cfg = try Self.tinyConfig()
        cfg.sft.steps = 0
        cfg.grpo.rewards.weights = ["correctness": 1]
        cfg.grpo.steps = 2
        cfg.grpo.beta = 0
        let run = temporaryRun()
        let trainer = try Trainer(config: cfg, runDirectory: run, resume: false)
        let before = trainer.policy.namedParameters.map { $0.1.array }
        try trainer.run()
        let grpo = try RunReader(runDirectory: run).metrics().rows.filter { $0.stage == "grpo" }
        XCTAssertEqual(grpo.map(\.step), [1, 2])
        for row in grpo {
            XCTAssertEqual(row.values["frac_reward_zero_std"], 1, "an untrained policy is never right")
            XCTAssertEqual(row.values["dynamic_sampling/kept_groups"], 0)
            XCTAssertEqual(row.values["dynamic_sampling/dropped_groups"], 3, "2 prompts and half as many again")
            XCTAssertEqual(row.values["dynamic_sampling/rounds"], 1)
            XCTAssertNil(row.values["loss"], "no update without signal")
        }
        XCTAssertEqual(trainer.policy.namedParameters.map { $0.1.array }, before, "nothing moved")

        cfg.grpo.steps = 1
        cfg.grpo.maxResampleRounds = 2
        let again = temporaryRun()
        try Trainer(config: cfg, runDirectory: again, resume: false).run()
        let row = try XCTUnwrap(try RunReader(runDirectory: again).metrics().rows.first { $0.stage == "grpo" })
        XCTAssertEqual(row.values["dynamic_sampling/rounds"], 3)
        XCTAssertEqual(row.values["dynamic_sampling/kept_groups"], 0)
        XCTAssertEqual(row.values["dynamic_sampling/dropped_groups"], 9, "three rounds of 2 prompts and half as many again")
        XCTAssertNil(row.values["loss"])
    }

    func testAMissingDatasetsFolderIsAClearError() throws {
        var cfg = try Self.tinyConfig()
        cfg.data.datasets = "/nonexistent/datasets"
        XCTAssertThrowsError(try Trainer(config: cfg, runDirectory: temporaryRun(), resume: false)) { e in
            XCTAssertTrue("\(e)".contains("data.datasets") && "\(e)".contains("/nonexistent/datasets"), "\(e)")
        }
    }
}

extension XCTestCase {
    /// A fresh run folder under the temporary directory, removed when the test ends.
    func temporaryRun() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-run-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
