// Data parallelism: the pieces that make N ranks train like one process (shares, per-group sampling
// streams, loss weights over global counts), then real `mpirun -np 2` runs of the release binary
// against a one-process run, and a rank killed with SIGKILL followed by --resume.

import Autograd
import Foundation
import Model
import Runs
import Tasks
import Training
import TestSupport
import XCTest

final class DataParallelTests: XCTestCase {
    // MARK: - Without MPI

    func testSharesAreContiguousBlocksInRankOrderThatCoverEveryItem() {
        for n in [0, 1, 3, 7, 16] {
            for size in 1...4 {
                let blocks = (0..<size).map { Communicator.share(n, rank: $0, size: size) }
                XCTAssertEqual(blocks.flatMap { Array($0) }, Array(0..<n), "n \(n) size \(size)")
                XCTAssertLessThanOrEqual((blocks.map(\.count).max() ?? 0) - (blocks.map(\.count).min() ?? 0), 1)
            }
        }
        XCTAssertEqual(Communicator.single.share(5), 0..<5)
        XCTAssertFalse(Communicator.launchedByMPI([:]))
        XCTAssertTrue(Communicator.launchedByMPI(["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertTrue(Communicator.launchedByMPI(["PMI_SIZE": "2"]))
    }

    func testKeyedStreamsDifferByKeyAndRepeat() {
        var a = RNG(seed: 5, stream: "grpo", keys: [1, 0, 2]), b = RNG(seed: 5, stream: "grpo", keys: [1, 0, 2])
        var c = RNG(seed: 5, stream: "grpo", keys: [1, 0, 3]), d = RNG(seed: 5, stream: "grpo", keys: [2, 0, 2])
        let xa = (0..<4).map { _ in a.next() }
        XCTAssertEqual(xa, (0..<4).map { _ in b.next() })
        XCTAssertNotEqual(xa, (0..<4).map { _ in c.next() })
        XCTAssertNotEqual(xa, (0..<4).map { _ in d.next() })
    }

    /// A prompt's group drawn with its own generator is the same whichever prompts share the batch:
    /// what lets ranks split groups without changing any sample.
    func testAPromptsSamplesDoNotDependOnItsBatchCompanions() throws {
        var init_ = RNG(seed: 1, stream: "init")
        let policy = Policy(config: PolicyConfig(vocabSize: 20, dModel: 16, layers: 1, heads: 2, ffDim: 32, maxContext: 32), rng: &init_)
        let prompts: [[Int32]] = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10], [11]]
        let opts = SamplingOptions(temperature: 1, maxNewTokens: 12)
        func stream(_ p: Int) -> RNG { RNG(seed: 9, stream: "sampling", keys: [UInt64(p)]) }
        var all = prompts.indices.map(stream)
        let together = Sampler.sample(policy: policy, prompts: prompts, group: 3, options: opts, stopTokens: [0], padToken: 19, rngs: &all)
        for split in [0..<1, 1..<3, 3..<4] {
            var rngs = split.map(stream)
            let part = Sampler.sample(policy: policy, prompts: Array(prompts[split]), group: 3, options: opts,
                                      stopTokens: [0], padToken: 19, rngs: &rngs)
            let same = together[(split.lowerBound * 3)..<(split.upperBound * 3)]
            XCTAssertEqual(part.map(\.tokens), same.map(\.tokens), "\(split)")
            XCTAssertEqual(part.map { $0.logprobs.map(\.bitPattern) }, same.map { $0.logprobs.map(\.bitPattern) }, "\(split)")
        }
        XCTAssertGreaterThan(Set(together.map(\.tokens)).count, 6, "samples must vary, or the test shows nothing")
    }

    /// Each rank's loss weights, over the whole batch's counts, are the whole batch's weights: the
    /// ranks' losses add up to the one-process loss, for every reduction.
    func testShardWeightsOverGlobalCountsEqualTheWholeBatchsWeights() {
        let t = 5
        // 4 sequences of 5 positions: lengths 3, 5, 1, 4.
        let lengths = [3, 5, 1, 4]
        let mask = lengths.flatMap { n in (0..<t).map { $0 < n ? Float(1) : 0 } }
        let total = lengths.reduce(0, +)
        for type in [LossType.grpo, .bnpo, .drGRPO, .dapo] {
            let whole = GRPOLoss.weights(mask: mask, sequences: 4, type: type, maxCompletionLength: 8, totalTokens: total)
            var shards: [Float] = []
            for rows in [0..<1, 1..<4] {
                let part = Array(mask[(rows.lowerBound * t)..<(rows.upperBound * t)])
                shards += GRPOLoss.weights(mask: part, sequences: rows.count, type: type, maxCompletionLength: 8,
                                           totalTokens: total, globalSequences: 4, globalTokens: total)
            }
            XCTAssertEqual(shards, whole, "\(type)")
        }
    }

    // MARK: - mpirun

    static let root = Repository.root

    /// The release binary and mpirun, or a skip naming what is missing.
    func tools() throws -> (ponder: URL, mpirun: URL) {
        guard let binary = Repository.ponderBinary else { throw XCTSkip(Repository.noBinary) }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard let mpirun = path.split(separator: ":").map({ URL(fileURLWithPath: String($0)).appendingPathComponent("mpirun") })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)")
        }
        return (binary, mpirun)
    }

    /// A tiny run whose GRPO steps learn something (rewards vary within groups), with 3 prompts per
    /// step so 2 ranks split the groups unevenly (1 and 2), batch-scaled advantages and the dapo
    /// loss (both need global statistics), a reference policy, μ = 2, and every completion logged.
    func writeConfig(_ dir: URL) throws -> URL {
        let cfg = try ConfigLoader.parse("""
            seed: 3
            threads: 1
            model: {d_model: 32, layers: 1, heads: 2, ff_dim: 64, max_context: 64}
            data: {families: [add], datasets: "\(TrainerTests.datasets)"}
            sft: {steps: 40, num_traces: 16, levels: [1], batch_size: 8, learning_rate: 1.0e-2}
            grpo:
              steps: 4
              prompts_per_step: 3
              num_generations: 4
              max_completion_length: 40
              beta: 0.04
              num_iterations: 2
              learning_rate: 3.0e-4
              scale_rewards: batch
              loss_type: dapo
              rewards: {weights: {correctness: 1.0, format: 0.5, tag_count: 0.5}}
            optimizer: {warmup_steps: 2}
            eval: {every: 2, levels: [1], limit_per_level: 5}
            checkpoint: {every: 1, keep_last: 2}
            logging: {completions_per_step: 100}
            """)
        let url = dir.appendingPathComponent("dp.yaml")
        try ConfigLoader.yaml(cfg).write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func launch(_ tools: (ponder: URL, mpirun: URL), ranks: Int?, _ args: [String], log: URL) throws -> Process {
        let p = Process()
        if let ranks {
            p.executableURL = tools.mpirun
            p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", tools.ponder.path] + args
        } else {
            p.executableURL = tools.ponder
            p.arguments = args
        }
        var env = ProcessInfo.processInfo.environment
        env["PONDER_NUM_THREADS"] = "1"
        p.environment = env
        XCTAssertTrue(FileManager.default.createFile(atPath: log.path, contents: nil), "cannot create \(log.path)")
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return p
    }

    func runToEnd(_ tools: (ponder: URL, mpirun: URL), ranks: Int?, _ args: [String], log: URL) throws {
        let p = try launch(tools, ranks: ranks, args, log: log)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    func rows(_ run: URL) throws -> [[String: Any]] {
        try String(contentsOf: MetricsLog.metricsURL(run), encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    func finalWeights(_ run: URL) throws -> [(String, [Float])] {
        try Checkpoint.load(from: Checkpoints.latest(in: run)!.url).policy.namedParameters.map { ($0.0, $0.1.array) }
    }

    /// Two ranks against one process on the same global batch and seed. Sampling, rewards,
    /// advantages and evals are identical (per-group streams; the same whole batch on every rank);
    /// losses and weights agree to float reassociation. Two partial gradient sums added, instead of
    /// one sum inside a backward pass, change each gradient element by ~1e-7 relative. AdamW passes
    /// that on as ~1e-7 relative, except for elements whose gradient is near its eps (1e-8), where
    /// the step m/(√v + eps) can move by a fair fraction of lr: measured 7e-7 after 40 SFT steps,
    /// 2.9e-6 after 4 GRPO steps at lr 3e-4, against a 1e-5 tolerance. GRPO alone moves the
    /// weights by more than 1e-3. (At lr 1e-3 the same noise, 1e-5, is enough to flip one sampled
    /// token of a near-uniform tiny policy within 3 steps; after that the runs differ as two seeds do.)
    func testTwoRanksTrainLikeOneProcess() throws {
        let tools = try tools()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-dp-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = try writeConfig(dir)
        let one = dir.appendingPathComponent("one"), two = dir.appendingPathComponent("two")
        try runToEnd(tools, ranks: nil, ["train", config.path, "--run-dir", one.path], log: dir.appendingPathComponent("one.log"))
        try runToEnd(tools, ranks: 2, ["train", config.path, "--run-dir", two.path], log: dir.appendingPathComponent("two.log"))

        XCTAssertEqual(try String(contentsOf: MetricsLog.completionsURL(two), encoding: .utf8),
                       try String(contentsOf: MetricsLog.completionsURL(one), encoding: .utf8), "the same completions, rewards and advantages")
        let a = try rows(one), b = try rows(two)
        XCTAssertEqual(a.count, b.count, "rank 0 alone writes metrics.jsonl, one line per step")
        let exact = ["reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "rewards/correctness/mean",
                     "rewards/tag_count/mean", "num_tokens", "learning_rate"]
        var updates = 0
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x["step"] as? Int, y["step"] as? Int)
            XCTAssertEqual(x["stage"] as? String, y["stage"] as? String)
            let stage = x["stage"] as? String
            for (k, v) in x where k != "step_time" && k != "tokens_per_s" && k != "step" && k != "stage" {
                let u = (v as! NSNumber).doubleValue, w = (y[k] as? NSNumber)?.doubleValue ?? .nan
                if k == "update/distinct_prefix_fraction" {
                    // The work the update's layout ran, as step_time: it depends on how ranks and micro-batches split the groups.
                    XCTAssertTrue(u > 0 && u < 1 && w > 0 && w < 1, "step \(x["step"]!) \(k): \(u), \(w): groups share their prompts")
                } else if stage == "eval" || exact.contains(k) {
                    XCTAssertEqual(u, w, "step \(x["step"]!) \(k)")
                } else {
                    XCTAssertEqual(u, w, accuracy: 1e-5 * max(1, abs(u)), "step \(x["step"]!) \(k)")
                }
            }
            if stage == "grpo", let l = x["loss"] as? Double, l != 0 { updates += 1 }
        }
        XCTAssertGreaterThanOrEqual(updates, 2, "GRPO must take real steps, or the comparison shows little")
        let sftFinal = try Checkpoint.load(from: Checkpoints.directory(one).appendingPathComponent("sft-final")).policy
        var grpoMoved: Float = 0, maxDiff: Float = 0
        for (((name, x), (_, y)), (_, s)) in zip(zip(try finalWeights(one), try finalWeights(two)), sftFinal.namedParameters) {
            XCTAssertEqual(x.count, y.count, name)
            maxDiff = max(maxDiff, zip(x, y).map { abs($0 - $1) }.max()!)
            grpoMoved = max(grpoMoved, zip(x, s.array).map { abs($0 - $1) }.max()!)
        }
        XCTAssertLessThanOrEqual(maxDiff, 1e-5, "weights after 44 steps: 2 ranks against 1")
        print("2 ranks against 1: max |Δweight| \(maxDiff); GRPO moved weights by up to \(grpoMoved)")
        XCTAssertGreaterThan(grpoMoved, 1e-3, "GRPO's own steps move the weights far more than the tolerance")
        func entries(_ run: URL) throws -> [String] {  // the run folder's files; the events file is named by host and pid
            try FileManager.default.contentsOfDirectory(atPath: run.path).map { $0.hasPrefix("events.out.tfevents") ? "events" : $0 }.sorted()
        }
        XCTAssertEqual(try entries(two), try entries(one), "rank 0 alone writes, the same files as one process")
    }

    /// Rank 1 is killed with SIGKILL mid-GRPO: mpirun ends the job (no hang) with a non-zero status,
    /// and `--resume` on 2 ranks finishes it with the metrics and weights of an uninterrupted
    /// 2-rank run, bit for bit (the gradient sum's order is fixed).
    func testAKilledRankEndsTheJobAndResumeFinishesIt() throws {
        let tools = try tools()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-dp-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = try writeConfig(dir)
        let whole = dir.appendingPathComponent("whole"), killed = dir.appendingPathComponent("killed")
        try runToEnd(tools, ranks: 2, ["train", config.path, "--run-dir", whole.path], log: dir.appendingPathComponent("whole.log"))

        let log = dir.appendingPathComponent("killed.log")
        let job = try launch(tools, ranks: 2, ["train", config.path, "--run-dir", killed.path], log: log)
        // Find rank 1 (the non-writer; Open MPI puts its rank in its environment) while SFT runs, so
        // that the kill itself is one call once the checkpoint appears.
        var deadline = Date().addingTimeInterval(120)
        var victim: pid_t?
        while victim == nil && job.isRunning && Date() < deadline {
            victim = Self.descendants(of: job.processIdentifier).first {
                Self.commandName($0) == "ponder" && Self.environment($0)["OMPI_COMM_WORLD_RANK"] == "1"
            }
            if victim == nil { usleep(5_000) }
        }
        let target = Checkpoints.directory(killed).appendingPathComponent("step-000041")
        while !FileManager.default.fileExists(atPath: target.path) && job.isRunning && Date() < deadline { usleep(1_000) }
        kill(try XCTUnwrap(victim, "rank 1 of the job"), SIGKILL)
        deadline = Date().addingTimeInterval(60)
        while job.isRunning && Date() < deadline { usleep(10_000) }
        XCTAssertFalse(job.isRunning, "mpirun must end the job when a rank dies, not hang")
        if job.isRunning { job.terminate() }
        job.waitUntilExit()
        XCTAssertNotEqual(job.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: Checkpoints.directory(killed).appendingPathComponent("step-000044").path),
                       "the run finished before the kill")

        try runToEnd(tools, ranks: 2, ["train", config.path, "--run-dir", killed.path, "--resume"], log: dir.appendingPathComponent("resume.log"))
        let strip = { (rows: [[String: Any]]) in rows.map { $0.filter { $0.key != "step_time" && $0.key != "tokens_per_s" } as NSDictionary } }
        XCTAssertEqual(strip(try rows(killed)), strip(try rows(whole)))
        for ((name, x), (_, y)) in zip(try finalWeights(killed), try finalWeights(whole)) {
            XCTAssertEqual(x.map(\.bitPattern), y.map(\.bitPattern), name)
        }
    }

    static func descendants(of pid: pid_t) -> [pid_t] {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        var parent: [pid_t: pid_t] = [:]
        for p in all {
            guard let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            if fields.count > 1, let pp = Int32(fields[1]) { parent[p] = pp }
        }
        var out: [pid_t] = [], frontier = [pid]
        while let p = frontier.popLast() {
            let children = parent.filter { $0.value == p }.map(\.key)
            out += children
            frontier += children
        }
        return out
    }

    static func commandName(_ pid: pid_t) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func environment(_ pid: pid_t) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [:] }
        var out: [String: String] = [:]
        for entry in data.split(separator: 0) {
            let s = String(decoding: entry, as: UTF8.self)
            if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        }
        return out
    }
}
