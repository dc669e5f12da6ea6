import Autograd
import Training
import XCTest

final class ConfigTests: XCTestCase {
    func testDefaultsAndOverrides() throws {
        let c = try ConfigLoader.parse("""
            grpo:
              num_generations: 4
              beta: 0.04
              rewards:
                weights: {correctness: 1.0, tag_count: 0.5}
            data:
              families: [add, mul]
            """, overrides: ["grpo.beta=0.02", "sft.learning_rate=1e-4", "model.tie_embeddings=true"])
        XCTAssertEqual(c.grpo.numGenerations, 4)
        XCTAssertEqual(c.grpo.beta, 0.02)
        XCTAssertEqual(c.sft.learningRate, 1e-4)
        XCTAssertTrue(c.model.tieEmbeddings)
        XCTAssertEqual(c.grpo.rewards.weights, ["correctness": 1, "tag_count": 0.5])
        XCTAssertEqual(c.data.families, ["add", "mul"])
        XCTAssertEqual(c.grpo.promptsPerStep, TrainConfig().grpo.promptsPerStep)
        // The resolved config reads back as the same value.
        XCTAssertEqual(try ConfigLoader.parse(ConfigLoader.yaml(c)), c)
    }

    /// `precision: auto` is bf16 exactly where this CPU runs bf16 products faster than float32 ones (AMX, or
    /// avx512_bf16 on an AMD core, the vendor as Linux reports it), else f32; f32 and bf16 mean themselves.
    func testPrecisionAutoIsBF16WhereTheCPURunsItFaster() throws {
        let auto = try ConfigLoader.parse("precision: auto\n").precision
        XCTAssertEqual(auto, .auto)
        let vendor = cpuinfoField("vendor_id")
        let faster = bf16IsFaster(amx: BLAS.amxAvailable, avx512bf16: BLAS.avx512bf16Available, amd: vendor == "AuthenticAMD")
        XCTAssertEqual(BLAS.bf16Faster, faster, "CPUID's vendor against /proc/cpuinfo's \(vendor ?? "unknown")")
        XCTAssertEqual(auto.resolved, faster ? .bf16 : .f32)
        if faster { XCTAssertNil(MatmulPrecision.bf16Unavailable) }
        XCTAssertEqual(try ConfigLoader.parse("precision: bf16\n").precision.resolved, .bf16)
        XCTAssertEqual(try ConfigLoader.parse("").precision.resolved, .f32)
    }

    func assertError(_ yaml: String, overrides: [String] = [], key: String, mentions: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ConfigLoader.parse(yaml, file: "x.yaml", overrides: overrides), file: file, line: line) { e in
            guard let e = e as? ConfigError else { return XCTFail("not a ConfigError: \(e)", file: file, line: line) }
            XCTAssertEqual(e.key, key, file: file, line: line)
            XCTAssertTrue("\(e)".contains(mentions), "\(e)", file: file, line: line)
            XCTAssertTrue("\(e)".hasPrefix("x.yaml") || e.file == "--set", "\(e)", file: file, line: line)
        }
    }

    func testUnknownKeysSuggestTheNearest() {
        assertError("grpo:\n  num_generation: 4\n", key: "grpo.num_generation", mentions: "did you mean 'grpo.num_generations'")
        assertError("gpro:\n  beta: 0.1\n", key: "gpro", mentions: "did you mean 'grpo'")
        assertError("grpo:\n  warmup_steps: 3\n", key: "grpo.warmup_steps", mentions: "'warmup_steps' is a key of 'optimizer'")
        assertError("", overrides: ["grpo.betta=0.1"], key: "grpo.betta", mentions: "did you mean 'grpo.beta'")
    }

    func testWrongTypesNameTheKey() {
        assertError("grpo:\n  beta: lots\n", key: "grpo.beta", mentions: "must be a number")
        assertError("sft:\n  steps: 1.5\n", key: "sft.steps", mentions: "must be an integer")
        assertError("grpo: 3\n", key: "grpo", mentions: "must be a mapping")
        assertError("model:\n  tie_embeddings: 1\n", key: "model.tie_embeddings", mentions: "true or false")
        assertError("data:\n  families: add\n", key: "data.families", mentions: "a list of strings")
        assertError("", overrides: ["sft.batch_size=big"], key: "sft.batch_size", mentions: "an integer")
    }

    func testImpossibleCombinations() {
        assertError("grpo:\n  num_generations: 1\n", key: "grpo.num_generations", mentions: "at least 2")
        assertError("grpo:\n  loss_type: ppo\n", key: "grpo.loss_type", mentions: "dr_grpo")
        assertError("grpo:\n  loss_type: cispo\n", key: "grpo.epsilon_high", mentions: "at least 1")
        XCTAssertEqual(try ConfigLoader.parse("grpo:\n  loss_type: cispo\n  epsilon_high: 5\n").epsilonHigh, 5)
        assertError("grpo:\n  importance_sampling_level: seq\n", key: "grpo.importance_sampling_level", mentions: "use token or sequence")
        assertError("grpo:\n  top_entropy_quantile: 0\n", key: "grpo.top_entropy_quantile", mentions: "(0, 1]")
        assertError("precision: fp16\n", key: "precision", mentions: "use f32, bf16 or auto")
        assertError("data:\n  curriculum:\n    mode: adaptiv\n", key: "data.curriculum.mode", mentions: "use adaptive or ladder")
        assertError("sft:\n  learning_rate: 0\n", key: "sft.learning_rate", mentions: "must be in (0, 1.0]")
        assertError("data:\n  families: [mull]\n", key: "data.families", mentions: "did you mean 'mul'")
        assertError("model:\n  d_model: 100\n  heads: 3\n", key: "model.d_model", mentions: "multiple of model.heads")
        assertError("grpo:\n  rewards:\n    weights: {correctnes: 1}\n", key: "grpo.rewards", mentions: "correctness")
    }
}

final class ConfigDocsTests: XCTestCase {
    /// Every config in configs/ loads (a renamed key or a bad value in a shipped config fails here, not in a
    /// user's first run), and configs/README.md lists it.
    func testShippedConfigsLoadAndAreListed() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs")
        let readme = try String(contentsOf: dir.appendingPathComponent("README.md"), encoding: .utf8)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertTrue(names.contains("quickstart.yaml") && names.contains("quickstart-sft-only.yaml"), "\(names)")
        for name in names {
            XCTAssertNoThrow(try ConfigLoader.load(dir.appendingPathComponent(name)), name)
            XCTAssertTrue(readme.contains("`\(name)`"), "configs/README.md does not list \(name)")
        }
    }

    /// configs/README.md documents every key of every section (a new field without a line fails).
    func testEveryKeyIsDocumented() throws {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs/README.md"), encoding: .utf8)
        let yaml = try ConfigLoader.yaml(TrainConfig())
        var section = ""
        for line in yaml.split(separator: "\n") {
            let indent = line.prefix { $0 == " " }.count
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[line.index(line.startIndex, offsetBy: indent)..<colon].trimmingCharacters(in: .whitespaces)
            if key.hasPrefix("-") || indent >= 6 { continue }  // list items; the reward names under grpo.rewards.weights
            if indent == 0 { section = key }
            if indent == 0 && line.hasSuffix(":") {  // a section: a heading, its keys rows
                XCTAssertTrue(readme.contains("## `\(key)`"), "configs/README.md lacks a section for \(key)")
            } else {
                XCTAssertTrue(readme.contains("| `\(key)` |"), "configs/README.md lacks a row for \(section).\(key)")
            }
        }
    }
}
