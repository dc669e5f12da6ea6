// `ponder eval`: held-out evaluation of one or more checkpoints on the same problems, a thin wrapper
// over Training's EvalSet and Evaluator.

import ArgumentParser
import Foundation
import Model
import Tasks
import Training

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate checkpoints on held-out problems: pass@1, pass@k, maj@k, format, length.",
        discussion: """
            By default the test sets of the families the first checkpoint's run evaluated on (every \
            family for a checkpoint that does not record them), the first 20 problems of each level. With several \
            checkpoints, prints pass@1 and format side by side with the deltas against the first. \
            Under mpirun the problems are split across ranks and rank 0 prints.
            """
    )

    @Argument(help: "Checkpoint folders (model.safetensors, config.json, tokenizer.json).") var checkpoints: [String]
    @Option(help: "A JSONL dataset of your own (datasets/README.md) instead of the built-in test sets.") var dataset: String?
    @Option(help: "Read the built-in test sets from this folder instead of regenerating them in memory.") var datasets: String?
    @Option(name: .customLong("family"), help: "A family to evaluate (repeatable; default: those the checkpoint's run evaluated on, else all).") var families: [String] = []
    @Option(name: .customLong("level"), help: "A difficulty level to evaluate (repeatable; default: all).") var levels: [Int] = []
    @Option(help: "Problems per (family, level), first in file order (default: 20 for the test sets, all for --dataset).")
    var limit: Int?
    @Option(help: "Samples per problem (the k of pass@k and maj@k).") var samples = 1
    @Option(help: "Sampling temperature; 0 is greedy (default: 0 for one sample, 1.0 for several).") var temperature: Float?
    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass (1: off).") var topP: Float = 1
    @Option(name: .customLong("max-new"), help: "Most new tokens per completion, for every problem (default: 128, or less for a problem whose prompt leaves less of the checkpoint's context).")
    var maxNew: Int?
    @Option(help: "Problems sampled together in one batch.") var batch = 32
    @Option(help: "Seed of the eval sampling stream.") var seed: UInt64 = 0
    @Option(help: "Matmul precision: f32, or bf16 (mixed precision on AMX or avx512_bf16). Default: the precision the first checkpoint's run sampled with, where this CPU has it, else f32.")
    var precision: String?
    @Flag(help: "Print the report as JSON (an array of reports for several checkpoints).") var json = false

    var options: EvalOptions {
        EvalOptions(samples: samples, temperature: temperature, topP: topP, maxNewTokens: maxNew ?? 128,
                    promptsPerBatch: batch, seed: seed)
    }

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1.") }
        do {
            try options.validate()
        } catch let error as EvalError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        if let precision { try setMatmulPrecision(precision) }  // a wrong flag fails before any loading
        let comm = try Communicator.world()
        for path in checkpoints {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw CommandFailure("no checkpoint folder at \(path)")
            }
        }
        // The first checkpoint is loaded first: without --family, the built-in test sets are those of the
        // families its run evaluated on (recorded in its metadata), else every family.
        var first: (policy: Policy, tokenizer: any Tokenizer, metadata: [String: String])? = try Checkpoint.load(
            from: URL(fileURLWithPath: checkpoints[0]))
        if precision == nil { setCheckpointPrecision(metadata: first!.metadata, path: checkpoints[0], announce: comm.isWriter) }
        var families = families
        if families.isEmpty, dataset == nil, let recorded = first?.metadata[Checkpoint.evalFamiliesKey] {
            families = recorded.split(separator: ",").map(String.init)
            if comm.isWriter {
                FileHandle.standardError.write(Data("""
                    \(checkpoints[0]): the families its run evaluated on: \(families.joined(separator: ", ")) \
                    (--family to choose others)

                    """.utf8))
            }
        }
        let problems: [Problem]
        if let dataset {
            problems = try EvalSet.load(
                dataset: URL(fileURLWithPath: dataset), families: families.nilIfEmpty, levels: levels.nilIfEmpty,
                limitPerLevel: limit)
        } else {
            problems = try EvalSet.select(
                families: families.nilIfEmpty, levels: levels.nilIfEmpty, limitPerLevel: limit ?? 20,
                datasetsDirectory: datasets.map { URL(fileURLWithPath: $0) })
        }
        var reports: [EvalReport] = []
        for path in checkpoints {
            let (policy, tokenizer, _) = try first ?? Checkpoint.load(from: URL(fileURLWithPath: path))
            first = nil
            var options = options
            if maxNew == nil { options.fitToContext = true }  // each problem: what its prompt leaves of the context, at most 128
            var report = try Evaluator.evaluate(
                policy: policy, tokenizer: tokenizer, problems: problems, options: options, communicator: comm,
                progress: { done, total in if comm.isWriter { Self.progress("\(path): \(done)/\(total) problems") } })
            if comm.isWriter { Self.progress(nil) }
            // Say where the context, not the model, ended completions: problems given less than max_new.
            let cut = report.problems.filter { $0.truncated > 0 && ($0.maxNewTokens ?? options.maxNewTokens) < options.maxNewTokens }
            if let fewest = cut.min(by: { $0.maxNewTokens! < $1.maxNewTokens! }), comm.isWriter {
                FileHandle.standardError.write(Data("""
                    warning: \(path): \(cut.reduce(0) { $0 + $1.truncated }) completions of \(cut.count) problems were cut \
                    where its \(policy.config.maxContext)-token context ends, after as few as \(fewest.maxNewTokens!) new tokens \
                    (\(fewest.id)), not where the model stopped; --family and --level choose what is evaluated.

                    """.utf8))
            }
            report.checkpoint = path
            reports.append(report)
        }
        comm.finalize()  // only after success: a rank that throws exits without it, and mpirun ends the job
        guard comm.isWriter else { return }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.nonConformingFloatEncodingStrategy = JSONText.nonFiniteEncoding
            let data = reports.count == 1 ? try encoder.encode(reports[0]) : try encoder.encode(reports)
            print(String(decoding: data, as: UTF8.self))
        } else if reports.count == 1 {
            printTable(reports[0])
        } else {
            printComparison(reports)
        }
    }

    /// Rows of every table: overall, then each family and its levels.
    private func rows(_ report: EvalReport) -> [(label: String, stats: EvalStats)] {
        var out = [("overall", report.overall)]
        for f in report.families {
            out.append((f.family, f.stats))
            for l in f.levels { out.append(("  \(f.family)/L\(l.level)", l.stats)) }
        }
        return out
    }

    /// "max_new=N", and whether a problem whose prompt left less of the context got less.
    private func maxNewLabel(_ report: EvalReport) -> String {
        let used = report.options ?? options
        return "max_new=\(used.maxNewTokens)" + (used.fitToContext ? " (or what the context leaves)" : "")
    }

    private func printTable(_ report: EvalReport) {
        let t = options.resolvedTemperature
        print("\(report.checkpoint ?? "")  k=\(report.k) \(t == 0 ? "greedy" : "temperature \(t)") \(maxNewLabel(report)) seed=\(seed)")
        // With one sample, pass@k and maj@k equal pass@1: their columns only appear for k > 1.
        let k = report.k
        print(pad("", 18) + cells(["n", "pass@1"] + (k > 1 ? ["pass@\(k)", "maj@\(k)"] : []) + ["format", "mean_len", "trunc"]))
        for (label, s) in rows(report) {
            let sampled = k > 1 ? [f3(s.passAtK), f3(s.majAtK)] : []
            print(pad(label, 18) + cells([String(s.count), f3(s.passAt1)] + sampled
                                         + [f3(s.format), String(format: "%.1f", s.meanLength), f3(s.truncated)]))
        }
    }

    private func printComparison(_ reports: [EvalReport]) {
        let names = reports.indices.map { String(UnicodeScalar(UInt8(65 + $0 % 26))) + ($0 >= 26 ? "\($0 / 26)" : "") }
        // Without --max-new each problem gets what its checkpoint's context allows, so say what each had.
        for (name, report) in zip(names, reports) {
            print("\(name) = \(report.checkpoint ?? "")  \(maxNewLabel(report))")
        }
        var header = ["n"]
        for (i, name) in names.enumerated() {
            header += ["\(name) pass@1"] + (i > 0 ? ["Δ"] : []) + ["\(name) format"] + (i > 0 ? ["Δ"] : [])
        }
        print(pad("", 18) + cells(header))
        let base = rows(reports[0])
        let all = reports.map(rows)
        for (r, row) in base.enumerated() {
            var line = [String(row.stats.count)]
            for (i, table) in all.enumerated() {
                let s = table[r].stats
                line.append(f3(s.passAt1))
                if i > 0 { line.append(signed(s.passAt1 - row.stats.passAt1)) }
                line.append(f3(s.format))
                if i > 0 { line.append(signed(s.format - row.stats.format)) }
            }
            print(pad(row.label, 18) + cells(line))
        }
    }

    private func cells(_ values: [String]) -> String {
        values.map { String(repeating: " ", count: max(0, 10 - $0.count)) + $0 }.joined()
    }

    private func pad(_ s: String, _ width: Int) -> String { s.padding(toLength: max(width, s.count), withPad: " ", startingAt: 0) }
    private func f3(_ x: Double) -> String { String(format: "%.3f", x) }
    private func signed(_ x: Double) -> String { String(format: "%+.3f", x) }

    /// A progress line on stderr when it is a terminal; nil clears it.
    private static func progress(_ line: String?) {
        guard isatty(2) != 0 else { return }
        FileHandle.standardError.write(Data((line.map { "\r\u{1B}[K" + $0 } ?? "\r\u{1B}[K").utf8))
    }
}

extension Array {
    fileprivate var nilIfEmpty: [Element]? { isEmpty ? nil : self }
}
