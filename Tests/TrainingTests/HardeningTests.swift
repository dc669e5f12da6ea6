// Bad input ends in a clear error, never a trap, a hang or a run that trains on NaN; and one run
// folder has one writer. Each test is a reproduction from issue 19.

import Autograd
import Foundation
import Model
import Runs
import Tasks
import Training
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ConfigHardeningTests: XCTestCase {
    static let quickstart = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("configs/quickstart.yaml")

    /// Each override must end in a ConfigError naming `key` (checked before any arithmetic uses it).
    func assertRefused(_ override: String, key: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ConfigLoader.load(Self.quickstart, overrides: [override]), override, file: file, line: line) { e in
            guard let e = e as? ConfigError else { return XCTFail("\(override): not a ConfigError: \(e)", file: file, line: line) }
            XCTAssertEqual(e.key, key, override, file: file, line: line)
        }
    }

    func testValuesThatCrashedOrOverflowedAreRefusedByKey() {
        let big = "9223372036854775807"
        for (o, key) in [
            ("model.heads=0", "model.heads"), ("model.heads=-2", "model.heads"),
            ("logging.completions_per_step=-1", "logging.completions_per_step"),
            ("grpo.max_completion_length=\(big)", "grpo.max_completion_length"), ("eval.max_new_tokens=\(big)", "eval.max_new_tokens"),
            ("model.d_model=4294967296", "model.d_model"), ("model.ff_dim=4294967296", "model.ff_dim"),
            ("model.layers=4294967296", "model.layers"), ("model.max_context=4294967296", "model.max_context"),
            ("grpo.prompts_per_step=4294967296", "grpo.prompts_per_step"), ("grpo.num_generations=4294967296", "grpo.num_generations"),
            ("eval.samples=4294967296", "eval.samples"), ("sft.batch_size=4294967296", "sft.batch_size"),
            ("sft.num_traces=4294967296", "sft.num_traces"), ("threads=4611686018427387904", "threads"),
            ("logging.print_every=0", "logging.print_every"), ("checkpoint.keep_last=0", "checkpoint.keep_last"),
        ] {
            assertRefused(o, key: key)
        }
        assertRefused("model.moe.experts=1000000", key: "model.moe.experts")
    }

    func testSettingsThatTrainedOnNaNAreRefused() {
        for (o, key) in [
            ("optimizer.eps=0", "optimizer.eps"), ("optimizer.beta1=1", "optimizer.beta1"), ("optimizer.beta2=1", "optimizer.beta2"),
            ("optimizer.beta2=1.5", "optimizer.beta2"), ("model.rope_theta=0", "model.rope_theta"), ("model.rope_theta=-3", "model.rope_theta"),
            ("model.rms_eps=-1", "model.rms_eps"), ("model.init_std=1e30", "model.init_std"), ("sft.learning_rate=1e9", "sft.learning_rate"),
            ("grpo.learning_rate=1e9", "grpo.learning_rate"), ("optimizer.weight_decay=1e9", "optimizer.weight_decay"),
        ] {
            assertRefused(o, key: key)
        }
    }

    /// A config that cannot fit in memory is refused with an estimate and the key to change, on any machine.
    func testAConfigThatCannotFitIsRefusedWithTheEstimate() throws {
        XCTAssertThrowsError(try ConfigLoader.load(Self.quickstart, overrides: ["model.d_model=65536", "model.heads=1024", "model.layers=1024"])) { e in
            XCTAssertEqual((e as? ConfigError)?.key, "model.d_model")
            XCTAssertTrue("\(e)".contains("GiB"), "\(e)")
        }
        // The shipped quickstart's estimate is far below a laptop's memory.
        let cfg = try ConfigLoader.load(Self.quickstart)
        XCTAssertLessThan(cfg.memoryEstimate().peak, 2e9)
        XCTAssertGreaterThan(cfg.memoryEstimate().parameters, 4.0 * 4 * 800_000, "weights, gradients and two moments")
    }

    func testMalformedKeysAndYAMLEndInErrors() {
        for o in [".=5", "..=5", "grpo..beta=1", "=3"] {
            XCTAssertThrowsError(try ConfigLoader.load(Self.quickstart, overrides: [o]), o) { XCTAssertTrue($0 is ConfigError, "\($0)") }
        }
        // "billion laughs": nine aliases of nine aliases, seven deep, would be 4.8 million strings.
        var bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
        for (prev, name) in zip("abcdef", "bcdefg") {
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(prev)", count: 9).joined(separator: ", ") + "]\n"
        }
        XCTAssertThrowsError(try ConfigLoader.parse(bomb, file: "bomb.yaml")) { e in
            XCTAssertTrue("\(e)".hasPrefix("bomb.yaml: expands to more than"), "\(e)")
        }
        XCTAssertThrowsError(try ConfigLoader.parse("? [a, b]\n: 1\n", file: "c.yaml")) { e in
            XCTAssertTrue("\(e)".contains("not a plain name"), "\(e)")
        }
        // A few aliases within the budget still work.
        XCTAssertEqual(try ConfigLoader.parse("sft:\n  levels: &l [1, 2]\neval:\n  levels: *l\n").eval.levels, [1, 2])
    }

    /// Every default trains: a trainer of the default config sets up (its SFT traces, at every training
    /// level, fit the default context; with max_context 192 the longest, 227 tokens, did not).
    func testTheDefaultsTrain() throws {
        var cfg = TrainConfig()
        cfg.data.datasets = TrainerTests.datasets
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-defaults-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: run) }
        XCTAssertNoThrow(try Trainer(config: cfg, runDirectory: run, resume: false))
        cfg.model.maxContext = 192
        XCTAssertThrowsError(try Trainer(config: cfg, runDirectory: run, resume: false)) { e in
            XCTAssertEqual((e as? ConfigError)?.key, "model.max_context")
        }
    }
}

final class NumericalHealthTests: XCTestCase {
    /// A NaN weight makes the first SFT step's loss NaN: training stops at once with an error naming
    /// the stage, the step and the keys, status.json says failed, and no checkpoint holds the NaN.
    func testANonFiniteLossStopsTrainingBeforeAnythingIsSaved() throws {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-nan-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: run) }
        var cfg = try TrainerTests.tinyConfig()
        cfg.checkpoint.every = 1
        let trainer = try Trainer(config: cfg, runDirectory: run, resume: false)
        trainer.policy.parameters[0].data[0] = .nan
        XCTAssertThrowsError(try trainer.run()) { e in
            guard let e = e as? NumericalError else { return XCTFail("\(e)") }
            XCTAssertEqual(e.stage, "sft")
            XCTAssertEqual(e.step, 1)
            XCTAssertTrue("\(e)".contains("sft.learning_rate"), "\(e)")
        }
        XCTAssertEqual(try RunStatus.read(from: run).state, .failed)
        XCTAssertTrue(Checkpoints.list(in: run).isEmpty)
    }

    /// A weight the loss never reads (the embedding row of '~', which no addition trace holds) made
    /// infinite: the loss and gradient norm stay finite, and the scan after the update names the tensor.
    func testANonFiniteWeightStopsTrainingNamingTheTensor() throws {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-inf-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: run) }
        let cfg = try TrainerTests.tinyConfig()
        let trainer = try Trainer(config: cfg, runDirectory: run, resume: false)
        let (name, embed) = trainer.policy.namedParameters.first { $0.0 == "model.embed_tokens.weight" }!
        let row = CharTokenizer().vocabSize - 1
        embed.data[row * cfg.model.dModel + 5] = .infinity
        XCTAssertThrowsError(try trainer.run()) { e in
            XCTAssertEqual(e as? NumericalError, {
                var x = NumericalError(what: "weight \(name)"); (x.stage, x.step) = ("sft", 1); return x
            }())
        }
    }

    /// A checkpoint whose weights hold a NaN is refused by tensor name when it loads.
    func testLoadingRefusesNonFiniteWeights() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-nanck-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = RNG(seed: 1)
        let policy = Policy(config: PolicyConfig(vocabSize: CharTokenizer().vocabSize, dModel: 8, layers: 1, heads: 2, ffDim: 16, maxContext: 16), rng: &rng)
        let (name, tensor) = policy.namedParameters[1]
        tensor.data[3] = .infinity
        try Checkpoint.save(policy: policy, tokenizer: CharTokenizer(), to: dir)
        XCTAssertThrowsError(try Checkpoint.load(from: dir)) { e in
            XCTAssertEqual((e as? SafeTensorsError)?.problem, .nonFinite(name: name, index: 3, value: .infinity))
        }
    }

    /// Sizes in a checkpoint's config.json are bounded like a training config's.
    func testHugeSizesInConfigJSONAreRefused() throws {
        for (key, value) in [("max_position_embeddings", "2147483648"), ("num_hidden_layers", "2147483648"), ("hidden_size", "1e300")] {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-hf-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            var rng = RNG(seed: 1)
            let policy = Policy(config: PolicyConfig(vocabSize: CharTokenizer().vocabSize, dModel: 8, layers: 1, heads: 2, ffDim: 16, maxContext: 16), rng: &rng)
            try Checkpoint.save(policy: policy, tokenizer: CharTokenizer(), to: dir)
            let url = dir.appendingPathComponent("config.json")
            var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            json[key] = try JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
            try JSONSerialization.data(withJSONObject: json).write(to: url)
            XCTAssertThrowsError(try Checkpoint.load(from: dir), key)
        }
    }

    func testRopeThetaThatDisagreesWithRopeParametersIsRefused() throws {
        let json = #"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "rope_theta": 500000, "rope_parameters": {"rope_type": "default", "rope_theta": 10000}}"#
        XCTAssertThrowsError(try JSONDecoder().decode(LlamaConfigJSON.self, from: Data(json.utf8))) { e in
            XCTAssertTrue("\(e)".contains("rope_theta"), "\(e)")
        }
        let agreeing = json.replacingOccurrences(of: "500000", with: "10000")
        XCTAssertEqual(try JSONDecoder().decode(LlamaConfigJSON.self, from: Data(agreeing.utf8)).ropeTheta, 10_000)
    }
}

final class RunFolderTests: XCTestCase {
    /// A held lock stops a second writer, naming the holder's pid; releasing it lets the next one in;
    /// a lock file left by a dead process does not block (flock dies with its process).
    func testOneWriterPerRunFolder() throws {
        let run = temporaryRun()
        var first: RunLock? = try RunLock(runDirectory: run)
        XCTAssertThrowsError(try RunLock(runDirectory: run)) { e in
            XCTAssertEqual(e as? RunsError, .locked(path: run.path, holder: Int(getpid())))
            XCTAssertTrue("\(e)".contains("pid \(getpid())"), "\(e)")
        }
        first = nil
        XCTAssertNil(first)
        XCTAssertNoThrow(try RunLock(runDirectory: run))
        try "999999\n".write(to: RunLock.url(run), atomically: false, encoding: .utf8)  // a stale holder's pid
        XCTAssertNoThrow(try RunLock(runDirectory: run))
    }

    func testRunFolderOpenRefusesOverwritesAndArchitectureChangesAndLeavesFinishedRunsAlone() throws {
        let run = temporaryRun()
        var cfg = try TrainerTests.tinyConfig()
        var opened: RunFolder.Opened? = try RunFolder.open(run, config: cfg, resume: false, isWriter: true)
        XCTAssertThrowsError(try RunFolder.open(run, config: cfg, resume: false, isWriter: true)) { e in
            XCTAssertEqual(e as? RunsError, .locked(path: run.path, holder: Int(getpid())))
        }
        opened = nil
        XCTAssertNil(opened)
        try ConfigLoader.yaml(cfg).write(to: RunFolder.savedConfigURL(run), atomically: true, encoding: .utf8)
        try Data("{\"step\":1}\n".utf8).write(to: MetricsLog.metricsURL(run))
        XCTAssertThrowsError(try RunFolder.open(run, config: cfg, resume: false, isWriter: true)) { e in
            XCTAssertTrue("\(e)".contains("--resume"), "\(e)")
        }
        cfg.model.dModel = 64
        cfg.model.initStd = 0.5  // not architecture: only a fresh start uses it
        XCTAssertThrowsError(try RunFolder.open(run, config: cfg, resume: true, isWriter: true)) { e in
            XCTAssertEqual((e as? ConfigError)?.key, "model.d_model")
            XCTAssertTrue("\(e)".contains("32 → 64"), "\(e)")
        }
        cfg.model.dModel = 32
        XCTAssertFalse(try RunFolder.open(run, config: cfg, resume: true, isWriter: true).finished)
        try RunStatus.write(RunStatus(state: .finished, step: 34, totalSteps: 34, stage: "grpo"), to: run)
        XCTAssertTrue(try RunFolder.open(run, config: cfg, resume: true, isWriter: true).finished)
    }

    /// Killed after the final checkpoint but before status.json said finished: the resume adds no
    /// second final eval row (each (stage, step) appears once) and the weights stay as saved.
    func testResumeAfterTheFinalCheckpointRepeatsNothing() throws {
        let run = temporaryRun()
        let cfg = try TrainerTests.tinyConfig()
        try Trainer(config: cfg, runDirectory: run, resume: false).run()
        let before = try String(contentsOf: MetricsLog.metricsURL(run), encoding: .utf8)
        try RunStatus.write(RunStatus(state: .running, step: 34, totalSteps: 34, stage: "grpo"), to: run)
        let end = try Trainer(config: cfg, runDirectory: run, resume: true).run()
        XCTAssertEqual(try String(contentsOf: MetricsLog.metricsURL(run), encoding: .utf8), before)
        XCTAssertNotNil(end["eval/pass@1"])
        XCTAssertEqual(try RunStatus.read(from: run).state, .finished)
        // The trainer's best/ folder is what Checkpoints.best names; num_tokens is TRL's running total.
        XCTAssertEqual(Checkpoints.best(in: run)?.lastPathComponent, "best")
        let tokens = try RunReader(runDirectory: run).metrics().rows.filter { $0.stage == "grpo" }.compactMap { $0.values["num_tokens"] }
        XCTAssertEqual(tokens.count, 4)
        XCTAssertEqual(tokens, tokens.sorted())
        XCTAssertGreaterThan(tokens[1] - tokens[0], Double(2 * 4 * 4), "at least a few prompt tokens per completion")
    }

    /// What killed runs leave is removed; a checkpoint moved aside mid-replace goes back.
    func testStaleTemporariesAreCleanedAndAMovedAsideCheckpointRestored() throws {
        let run = temporaryRun()
        let ck = Checkpoints.directory(run)
        let fm = FileManager.default
        for folder in [".tmp-step-000010-123", ".deleting-step-000004-9", ".old-step-000008-77", "step-000006"] {
            try fm.createDirectory(at: ck.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try Data("x".utf8).write(to: run.appendingPathComponent(".status.json.tmp-12-34"))
        try Data("x".utf8).write(to: ck.appendingPathComponent(".old-step-000008-77/model.safetensors"))
        let cleaned = Checkpoints.cleanStale(in: run)
        XCTAssertEqual(Set(cleaned), [".tmp-step-000010-123", ".deleting-step-000004-9", ".old-step-000008-77", ".status.json.tmp-12-34"])
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: ck.path).sorted(), ["step-000006", "step-000008"])
        XCTAssertTrue(fm.fileExists(atPath: ck.appendingPathComponent("step-000008/model.safetensors").path))
        XCTAssertFalse(fm.fileExists(atPath: run.appendingPathComponent(".status.json.tmp-12-34").path))
    }

    /// An atomic write replaces regular files only: a FIFO stays a FIFO and a folder a folder.
    func testAtomicWritesRefuseNonRegularTargets() throws {
        let run = temporaryRun()
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let fifo = run.appendingPathComponent("pipe")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: fifo)) { XCTAssertTrue("\($0)".contains("a FIFO"), "\($0)") }
        XCTAssertEqual(AtomicFile.nonRegularKind(fifo.path), "a FIFO")
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: run)) { XCTAssertTrue("\($0)".contains("a directory"), "\($0)") }
        XCTAssertThrowsError(try SVGChart.write([], to: fifo))
        XCTAssertEqual(AtomicFile.nonRegularKind(fifo.path), "a FIFO")
        let file = run.appendingPathComponent("ok.txt")
        XCTAssertNoThrow(try AtomicFile.write(Data("x".utf8), to: file))
        XCTAssertNoThrow(try AtomicFile.write(Data("y".utf8), to: file))
    }

    /// A metrics line whose step no chart can hold is a bad line, not a trap.
    func testAHugeStepIsABadLine() throws {
        let run = temporaryRun()
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try Data("{\"step\": 9223372036854775807, \"stage\": \"grpo\", \"reward\": 1}\n{\"step\": 2, \"reward\": 1}\n".utf8)
            .write(to: MetricsLog.metricsURL(run))
        XCTAssertThrowsError(try RunReader(runDirectory: run).metrics()) { e in
            XCTAssertTrue("\(e)".contains("metrics.jsonl:1:"), "\(e)")
        }
    }
}

final class InputHardeningTests: XCTestCase {
    func testCRLFLinesAreAcceptedAndDuplicateKeysRefused() throws {
        let crlf = "{\"prompt\": \"1+1\", \"answer\": \"2\"}\r\n{\"prompt\": \"2+2\", \"answer\": \"4\"}\r\n"
        XCTAssertEqual(try Datasets.parse(crlf, file: "d.jsonl").map(\.answer), ["2", "4"])
        let dup = "{\"prompt\": \"1+1\", \"answer\": \"2\", \"answer\": \"3\"}\n"
        XCTAssertThrowsError(try Datasets.parse(dup, file: "d.jsonl")) { e in
            XCTAssertTrue("\(e)".contains("d.jsonl:1"), "\(e)")
            XCTAssertTrue("\(e)".contains("answer"), "\(e)")
        }
        // A nested object's keys and a value that spells a key are not duplicates.
        let nested = "{\"prompt\": \"p\", \"answer\": \"x\", \"id\": \"tests\", \"verifier\": {\"kind\": \"synthesis\", \"tests\": [[1, 1]]}}\n"
        XCTAssertEqual(try Datasets.parse(nested, file: "d.jsonl").count, 1)
    }

    /// One completion's total sandbox work is bounded whatever the number of tests, and a dataset
    /// may not hold more than 1000 tests per problem.
    func testSynthesisWorkPerCompletionIsBounded() throws {
        let tests = (0..<1000).map { [$0, $0] }
        // A right answer that spends a few hundred steps per test: each run is far inside the per-run
        // limit, but 1000 of them are not inside the per-completion budget, so the later tests fail.
        let slow = Verifier.synthesis(tests: tests).check(response: "s=0;rep 300 {s=s+1};x", reference: "")
        XCTAssertFalse(slow.isCorrect)
        XCTAssertGreaterThan(slow.score, 0.02)
        XCTAssertLessThan(slow.score, 0.9)
        XCTAssertTrue(slow.detail.contains("work limit per completion"), slow.detail)
        XCTAssertTrue(Verifier.synthesis(tests: Array(tests.prefix(20))).check(response: "s=0;rep 300 {s=s+1};x", reference: "").isCorrect)
        XCTAssertTrue(Verifier.synthesis(tests: tests).check(response: "x", reference: "").isCorrect)
        XCTAssertFalse(Verifier.synthesis(tests: tests).check(response: "while 1 {x=x};x", reference: "").isCorrect)
        let line = "{\"prompt\": \"p\", \"answer\": \"x\", \"verifier\": {\"kind\": \"synthesis\", \"tests\": "
            + "\((0..<1001).map { [$0, $0] })}}\n"
        XCTAssertThrowsError(try Datasets.parse(line, file: "s.jsonl")) { XCTAssertTrue("\($0)".contains("1000"), "\($0)") }
    }
}
