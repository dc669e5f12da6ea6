// A fuzz suite that stays: from fixed seeds, thousands of hostile configs, dataset and completion
// lines, corrupted checkpoints and CLI flags. Each must end in a typed error or a success: a trap
// kills the test process (CI goes red), a case slower than a few seconds fails, and the process's
// peak memory is bounded. Counts are printed for the record.

import Autograd
import Foundation
import Model
import Runs
import Tasks
import Training
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class FuzzTests: XCTestCase {
    static let root = Repository.root

    /// Values a user (or a corrupted file) might write, as YAML/JSON text.
    static let hostileValues = [
        "0", "-1", "-2", "1", "2", "3", "7", "64", "1e30", "-1e30", "1e-30", "9223372036854775807", "-9223372036854775808",
        "18446744073709551616", "2147483648", "4294967296", "4611686018427387904", "1e300", ".nan", ".inf", "-.inf", "0.5", "1.5",
        "-0.0", "true", "false", "null", "\"\"", "\"x\"", "[]", "{}", "[1, 2]", "{a: 1}", "[-1]", "[0]", "[1000000]", "mha", "mla",
        "bf16", "dapo", "none", "constant", "sigmoid", "ladder", "'\u{1F642}'", "&a [*a]", "[[[[[[]]]]]]", "0x10", "1_000",
    ]

    /// Wall-clock limit of one case; a hang shows up as a failure here rather than a stuck CI.
    static let caseLimit = 5.0

    func timed(_ what: @autoclosure () -> String, _ body: () throws -> Void) -> Bool {
        let t0 = Date()
        var failed = false
        do { try body() } catch { failed = true }
        let dt = Date().timeIntervalSince(t0)
        XCTAssertLessThan(dt, Self.caseLimit, "slow case: \(what())")
        return failed
    }

    static func peakMemoryBytes() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }

    static func snake(_ camel: String) -> String {
        camel.unicodeScalars.reduce(into: "") { out, c in
            if CharacterSet.uppercaseLetters.contains(c) { out += "_" + String(c).lowercased() } else { out.unicodeScalars.append(c) }
        }
    }

    /// Every leaf key of the config, as --set paths.
    static func configPaths() throws -> [String] {
        let tree = try JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainConfig())) as! [String: Any]
        func walk(_ d: [String: Any], _ prefix: String) -> [String] {
            d.flatMap { k, v -> [String] in
                let p = prefix.isEmpty ? snake(k) : prefix + "." + snake(k)
                if let sub = v as? [String: Any], !sub.isEmpty, p != "grpo.rewards.weights" { return walk(sub, p) }
                return [p]
            }
        }
        return walk(tree, "").sorted()
    }

    // MARK: Configs

    func testConfigMutations() throws {
        var rng = RNG(seed: 0xC0F1)
        let base = try String(contentsOf: Self.root.appendingPathComponent("configs/quickstart.yaml"), encoding: .utf8)
        let paths = try Self.configPaths()
        XCTAssertGreaterThan(paths.count, 80)
        var ok = 0, refused = 0
        for i in 0..<2_400 {
            var text = base
            var overrides: [String] = []
            for _ in 0..<(1 + rng.int(below: 3)) {
                var path = paths[rng.int(below: paths.count)]
                if rng.int(below: 10) == 0 { path += ["x", ".", "..", "_"][rng.int(below: 4)] }
                // Half plausible values (which pass more checks and reach the derived code), half hostile ones.
                let plausible = ["1", "2", "4", "8", "16", "100", "1000", "0.1", "0.9", "0.001"]
                let value = rng.int(below: 2) == 0 ? plausible[rng.int(below: plausible.count)] : Self.hostileValues[rng.int(below: Self.hostileValues.count)]
                overrides.append(path + "=" + value)
            }
            if i % 8 == 0 {  // damage the file itself
                var bytes = Array(text.utf8)
                switch rng.int(below: 4) {
                case 0: bytes = Array(bytes.prefix(rng.int(below: bytes.count)))
                case 1: bytes[rng.int(below: bytes.count)] = UInt8(rng.int(below: 256))
                case 2: bytes.insert(contentsOf: Array(Self.hostileValues[rng.int(below: Self.hostileValues.count)].utf8), at: rng.int(below: bytes.count))
                default: bytes += Array("\n? [a, b]\n: 1\n".utf8)
                }
                text = String(decoding: bytes, as: UTF8.self)
            }
            let failed = timed("\(overrides)") {
                let cfg = try ConfigLoader.parse(text, file: "fuzz.yaml", overrides: overrides)
                // Derived values of an accepted config must be computable too.
                _ = cfg.memoryEstimate()
                try cfg.policyConfig(vocabSize: 100).validate()
                _ = try ConfigLoader.yaml(cfg)
            }
            if failed { refused += 1 } else { ok += 1 }
        }
        print("fuzz configs: \(ok + refused) cases, \(ok) accepted, \(refused) refused with an error, peak memory \(Self.peakMemoryBytes() >> 20) MiB")
        XCTAssertGreaterThan(ok, 100)
        XCTAssertGreaterThan(refused, 1_000)
        XCTAssertLessThan(Self.peakMemoryBytes(), 4 << 30)
    }

    // MARK: Dataset and completion lines

    static let hostileCompletions: [String] = [
        "", "<think>", "</answer>", "<think></think><answer></answer>", String(repeating: "(", count: 5_000) + "1",
        String(repeating: "-", count: 3_000) + "5", "<answer>99999999999999999999999999</answer>", "<answer>-0</answer>",
        "<answer>1/0</answer>", "<answer>while 1 {x=x};x</answer>", "<answer>rep 1000000000 {a=1};1</answer>",
        "<answer>" + String(repeating: "rep 9 {", count: 30) + "a=1" + String(repeating: "}", count: 30) + ";a</answer>",
        String(repeating: "<think>a</think>", count: 2_000) + "<answer>2</answer>", "<answer>\u{0}\u{1}\u{FFFF}</answer>",
        String(repeating: "x", count: 100_000), "<answer>[" + String(repeating: "[", count: 2_000) + "</answer>",
        "<answer>TTFFTF</answer>", "<answer>1 2 3 4\n4 3 2 1\n2 1 4 3\n3 4 1 2</answer>", "<answer>A>B>C</answer>",
        "<answer>-85 + 21*8*(98 - 66)/8</answer>",
    ]

    func testDatasetAndCompletionLines() throws {
        var rng = RNG(seed: 0xDA7A)
        var lines: [String] = []
        for family in TaskRegistry.names {
            let text = try String(contentsOf: Self.root.appendingPathComponent("datasets/\(family)/test.jsonl"), encoding: .utf8)
            lines += text.split(separator: "\n").prefix(20).map(String.init)
        }
        var ok = 0, refused = 0
        for i in 0..<2_400 {
            var bytes = Array(lines[rng.int(below: lines.count)].utf8)
            switch i % 8 {
            case 0: bytes = Array(bytes.prefix(rng.int(below: bytes.count)))
            case 1: for _ in 0..<3 { bytes[rng.int(below: bytes.count)] = UInt8(rng.int(below: 256)) }
            case 2:  // a number replaced by a hostile one
                let text = String(decoding: bytes, as: UTF8.self)
                let value = ["9223372036854775807", "-1", "1e308", "0", "18446744073709551616", "null", "\"1\"", "[]", "2147483648"][rng.int(below: 9)]
                bytes = Array(text.replacingOccurrences(of: "\"difficulty\":", with: "\"difficulty\":\(value),\"x\":").utf8)
                if rng.int(below: 2) == 0 { bytes = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "[", with: "[\(value),").utf8) }
            case 3: bytes = Array("{\"prompt\":\"p\",\"answer\":\"a\",\"answer\":\"b\"}".utf8)
            case 4: bytes = Array((String(repeating: "[", count: 400 + rng.int(below: 400)) + "1").utf8)
            case 5:  // another family's verifier on this problem
                let kinds = ["\"integer\"", "\"exact\"", "{\"kind\":\"countdown\",\"numbers\":[],\"target\":1}", "{\"kind\":\"synthesis\",\"tests\":[[1]]}",
                             "{\"kind\":\"sudoku\",\"puzzle\":\"\"}", "{\"kind\":\"unknown\"}", "{\"kind\":\"countdown\",\"numbers\":[1,2],\"target\":9223372036854775807}"]
                let text = String(decoding: bytes, as: UTF8.self)
                if let r = text.range(of: "\"verifier\":") {
                    bytes = Array((text[..<r.upperBound] + kinds[rng.int(below: kinds.count)] + ",\"y\":" + text[r.upperBound...]).utf8)
                }
            case 6: bytes += Array("\r\n".utf8)
            default: break
            }
            let line = String(decoding: bytes, as: UTF8.self)
            let failed = timed(line) {
                let problems = try Datasets.parse(line, file: "fuzz.jsonl")
                for problem in problems {
                    let completion = Self.hostileCompletions[rng.int(below: Self.hostileCompletions.count)]
                    let record = "{\"prompt\":\(Self.json(problem.prompt)),\"answer\":\(Self.json(problem.answer)),\"completion\":\(Self.json(completion))}"
                    let report = try Scoring.score(record, file: "c.jsonl", problems: [], rewards: RewardSet())
                    for row in report.rows { XCTAssertTrue(row.scores.total.isFinite, completion) }
                    _ = problem.verifier.check(response: completion, reference: problem.answer)
                }
            }
            if failed { refused += 1 } else { ok += 1 }
        }
        // Every hostile completion against every family's real problems.
        var scored = 0
        for line in lines.enumerated().filter({ $0.offset % 10 == 0 }).map(\.element) {
            for problem in try Datasets.parse(line, file: "d.jsonl") {
                for completion in Self.hostileCompletions {
                    _ = timed("\(problem.id): \(completion.prefix(40))") {
                        let r = problem.verifier.check(response: completion, reference: problem.answer)
                        XCTAssertFalse(r.isCorrect && completion.isEmpty)
                    }
                    scored += 1
                }
            }
        }
        print("fuzz dataset/completion lines: \(ok + refused) lines (\(ok) accepted, \(refused) refused), \(scored) hostile completions verified, peak memory \(Self.peakMemoryBytes() >> 20) MiB")
        XCTAssertGreaterThan(ok, 200)
        XCTAssertGreaterThan(refused, 500)
        XCTAssertLessThan(Self.peakMemoryBytes(), 4 << 30)
    }

    static func json(_ s: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: s, options: .fragmentsAllowed), as: UTF8.self)
    }

    // MARK: Checkpoints

    func testCorruptedCheckpoints() throws {
        var rng = RNG(seed: 0xCC)
        let fm = FileManager.default
        let base = fm.temporaryDirectory.appendingPathComponent("ponder-fuzz-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: base) }
        var init0 = RNG(seed: 5)
        let good = base.appendingPathComponent("good")
        let policy = Policy(config: PolicyConfig(vocabSize: CharTokenizer().vocabSize, dModel: 16, layers: 2, heads: 2, ffDim: 32, maxContext: 32), rng: &init0)
        try Checkpoint.save(policy: policy, tokenizer: CharTokenizer(), to: good)
        let names = ["model.safetensors", "config.json", "tokenizer.json"]
        let files = try names.map { try Data(contentsOf: good.appendingPathComponent($0)) }
        let config = try JSONSerialization.jsonObject(with: files[1]) as! [String: Any]
        let headerLength = Int(files[0].prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        var ok = 0, refused = 0
        let dir = base.appendingPathComponent("case")
        for i in 0..<1_200 {
            try? fm.removeItem(at: dir)
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            var parts = files
            var st = [UInt8](parts[0])
            switch i % 6 {
            case 0:  // the header length
                let v: UInt64 = [0, 1, 7, UInt64(headerLength - 1), UInt64(st.count), UInt64.max, 1 << 40][rng.int(below: 7)]
                for b in 0..<8 { st[b] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(b))) }
            case 1:  // the header text: offsets, shapes, dtypes
                var header = String(decoding: st[8..<(8 + headerLength)], as: UTF8.self)
                let edits: [(String, String)] = [
                    ("\"F32\"", ["\"F16\"", "\"BF16\"", "\"I64\"", "\"F64\"", "\"\"", "1"][rng.int(below: 6)]),
                    ("\"data_offsets\":[", "\"data_offsets\":[" + ["9223372036854775807,", "-1,", "1e300,", "0,", "3,"][rng.int(below: 5)]),
                    ("\"shape\":[", "\"shape\":[" + ["4294967296,", "-1,", "0,", "1e30,", "2147483648,2147483648,"][rng.int(below: 5)]),
                    ("{", "{\"__metadata__\":{\"step\":1e999},"), ("}", "}}"), ("\"", "'"),
                ]
                let (a, b) = edits[rng.int(below: edits.count)]
                if let r = header.range(of: a, options: [], range: header.index(header.startIndex, offsetBy: rng.int(below: max(1, header.count / 2)))..<header.endIndex) {
                    header.replaceSubrange(r, with: b)
                }
                var bytes = Array(header.utf8)
                while bytes.count % 8 != 0 { bytes.append(32) }
                let n = UInt64(bytes.count)
                st = (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + bytes + Array(st[(8 + headerLength)...])
            case 2: st = Array(st.prefix(rng.int(below: st.count)))  // truncated
            case 3: for _ in 0..<8 { st[8 + headerLength + rng.int(below: st.count - 8 - headerLength)] = 0xFF }  // NaN bytes in the data
            case 4:  // config.json sizes and types
                var c = config
                let keys = Array(c.keys).sorted()
                c[keys[rng.int(below: keys.count)]] = [2147483648, -1, 0, 1e300, "x", NSNull(), [1], 9_007_199_254_740_993, 1 << 40][rng.int(below: 9)]
                parts[1] = try JSONSerialization.data(withJSONObject: c)
            default:  // tokenizer.json damaged
                var t = [UInt8](parts[2])
                if rng.int(below: 2) == 0 { t = Array(t.prefix(rng.int(below: t.count))) } else { t[rng.int(below: t.count)] = UInt8(rng.int(below: 256)) }
                parts[2] = Data(t)
            }
            parts[0] = Data(st)
            for (name, data) in zip(names, parts) { try data.write(to: dir.appendingPathComponent(name)) }
            let failed = timed("checkpoint case \(i)") {
                let (p, tok, _) = try Checkpoint.load(from: dir)
                // A checkpoint that loads must also run.
                let ids = try tok.encodePrompt("1+2").map(Int32.init)
                var srng = RNG(seed: 1)
                _ = Sampler.sample(policy: p, prompts: [ids], group: 1, options: SamplingOptions(maxNewTokens: 4, greedy: true),
                                   stopTokens: [Int32(tok.eos)], padToken: Int32(tok.pad), rng: &srng)
            }
            if failed { refused += 1 } else { ok += 1 }
        }
        print("fuzz checkpoints: \(ok + refused) corrupted folders, \(ok) loaded and sampled, \(refused) refused with an error, peak memory \(Self.peakMemoryBytes() >> 20) MiB")
        XCTAssertGreaterThan(refused, 600)
        XCTAssertLessThan(Self.peakMemoryBytes(), 4 << 30)
    }

    // MARK: CLI flags

    /// Numeric flags of every command with hostile values, through the built binary (skipped when
    /// there is none, e.g. under `swift test` without a release build): each must exit with a
    /// message, never a signal.
    func testCLIFlags() throws {
        guard let binary = Repository.ponderBinary else { throw XCTSkip(Repository.noBinary) }
        let values = ["0", "-1", "2147483648", "9223372036854775807", "nan", "abc"]
        let commands: [[String]] = [
            ["bench", "train", "--batch"], ["bench", "train", "--seq"], ["bench", "train", "--d"], ["bench", "train", "--heads"],
            ["bench", "train", "--vocab"], ["bench", "generate", "--gen-batch"], ["bench", "generate", "--new"],
            ["bench", "grpo", "--steps"], ["bench", "grpo", "--G"], ["bench", "grpo", "--prompts"], ["bench", "grpo", "--task"], ["bench", "matmul", "--repeats"],
            ["eval", "/nonexistent", "--samples"], ["eval", "/nonexistent", "--batch"], ["eval", "/nonexistent", "--max-new"],
            ["sample", "/nonexistent", "--prompt", "1+1", "-n"], ["sample", "/nonexistent", "--prompt", "1+1", "--max-new"],
            ["curves", "/nonexistent", "--width"], ["curves", "/nonexistent", "--height"],
            ["train", "configs/quickstart.yaml", "--run-dir", "/nonexistent/x", "--set", "model.heads="],
        ]
        var cases = 0
        for command in commands {
            for value in values {
                var args = command
                args[args.count - 1] += args.last!.hasSuffix("=") ? value : ""
                if !command.last!.hasSuffix("=") { args.append(value) }
                if command.first == "bench" { args += ["--steps", "1"].filter { _ in !command.contains("--steps") && command[1] != "matmul" } }
                let p = Process()
                p.executableURL = binary
                p.arguments = args
                p.currentDirectoryURL = Self.root
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                try p.run()
                let t0 = Date()
                while p.isRunning && Date().timeIntervalSince(t0) < 20 { usleep(20_000) }
                if p.isRunning { p.terminate(); XCTFail("hang: ponder \(args.joined(separator: " "))"); continue }
                XCTAssertEqual(p.terminationReason, .exit, "signal: ponder \(args.joined(separator: " "))")
                XCTAssertNotEqual(p.terminationStatus, 0, "accepted: ponder \(args.joined(separator: " "))")
                cases += 1
            }
        }
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
        print("fuzz CLI flags: \(cases) invocations of the binary, 0 signals, peak child memory \(usage.ru_maxrss >> 10) MiB")
    }
}
